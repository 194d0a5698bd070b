//! `xapid`: thin entry point; everything lives in [`xenha::daemon`].
fn main() {}
