//! The local engine's release monitor as a program of its own, for the platform's tests
//! (Berth itself runs it as `berth release-monitor`): see `platform::local::monitor`.

fn main() {
    let args = std::env::args_os().skip(1).collect();
    std::process::exit(platform::local::monitor::main(args));
}
