//! `xe`: thin entry point; everything lives in [`xenha::cli`].
fn main() {
    std::process::exit(xenha::cli::main());
}
