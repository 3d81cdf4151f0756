use clap::Parser;

/// buildah runs `berth oci-runtime …` as its OCI runtime (see
/// `platform::local::runtime_shim`): it is handled before anything else starts, with
/// neither settings nor logging, since runc's callers read its output.
const OCI_RUNTIME_SHIM: &str = "oci-runtime";
/// Each release runs under `berth release-monitor` (see `platform::local::monitor`), which
/// outlives this process; it reads its spec on stdin and starts no Berth of its own.
const RELEASE_MONITOR: &str = "release-monitor";

fn main() {
    let mut args = std::env::args_os().skip(1);
    match args.next().as_deref().and_then(std::ffi::OsStr::to_str) {
        Some(OCI_RUNTIME_SHIM) => {
            std::process::exit(platform::local::runtime_shim::main(args.collect()))
        }
        Some(RELEASE_MONITOR) => std::process::exit(platform::local::monitor::main(args.collect())),
        _ => {}
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
