//! `xe`: thin entry point; everything lives in [`xenha::cli`].
fn main() {}
