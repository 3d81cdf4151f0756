//! The local engine's OCI runtime shim as a program of its own, for the platform's tests
//! (Berth itself runs it as `berth oci-runtime`): see `platform::local::runtime_shim`.

fn main() {
    let args = std::env::args_os().skip(1).collect();
    std::process::exit(platform::local::runtime_shim::main(args));
}
