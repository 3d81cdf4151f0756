use clap::Parser;

/// buildah runs `berth oci-runtime …` as its OCI runtime (see
/// `platform::local::runtime_shim`): it is handled before anything else starts, with
/// neither settings nor logging, since runc's callers read its output.
const OCI_RUNTIME_SHIM: &str = "oci-runtime";

fn main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new(OCI_RUNTIME_SHIM)) {
        std::process::exit(platform::local::runtime_shim::main(args.collect()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    runtime.block_on(async {
        let cli = server::cli::Cli::parse();
        if let Err(error) = server::cli::run(cli).await {
            eprintln!("berth: {error:#}");
            std::process::exit(1);
        }
    });
}
