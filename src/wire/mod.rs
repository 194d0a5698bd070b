//! XML-RPC and JSON-RPC codecs.
