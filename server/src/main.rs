use clap::Parser;

/// mimalloc serves every allocation, Rust's and C's (SQLite's, libc's): a page is
/// hundreds of small allocations, many freed on another thread than the one that made
/// them (sqlx reads SQLite rows on each connection's own thread), where glibc's malloc
/// takes a lock. Measured on the history page: 1,150-1,200 req/s with glibc, 1,950-2,090
/// with mimalloc, lower memory under that load (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
