//! A network of its own for every release and every build: a network namespace
//! (`ip netns add`) wired to the outside by slirp4netns, a user-mode TCP/IP stack that
//! gives it outbound access through the host but, with `--disable-host-loopback`, no way
//! to the host's loopback (where Berth, PostgreSQL and every other release listen). A
//! release's `PORT` is published on the host's 127.0.0.1 through slirp4netns's API
//! (`add_hostfwd`); nothing else of the namespace is reachable from outside, and other
//! releases, each in a namespace of its own, are not reachable from inside.
//!
//! slirp4netns runs in a process group of its own that dies with Berth, recorded on disk
//! like a release's, so that the next Berth ends what a killed one left behind; the
//! namespaces it made are recorded too (`run/networks/namespaces/<name>`) and deleted then.
//! Only recorded ones: another engine on the host (a test's) may be using its own.

use super::process_group::{self, GroupRecord};
use std::{
    io,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
    process::{Child, Command},
};

/// Namespaces the engine makes are named `berth-…` (a release's is named like its
/// container; a build's `berth-build-<operation>-<random>`).
pub(crate) const NAMESPACE_PREFIX: &str = "berth-";
/// What a namespace's resolv.conf names: slirp4netns's DNS forwarder.
pub(crate) const DNS: &str = "10.0.2.3";
/// How long slirp4netns may take to open its API socket.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The tools that make a network namespace.
#[derive(Clone, Debug)]
pub(crate) struct NetworkTools {
    pub slirp4netns: PathBuf,
    pub ip: PathBuf,
    /// Where slirp4netns's API sockets and process-group records live.
    pub run_dir: PathBuf,
}

/// A network namespace with slirp4netns attached; ended with [`Network::stop`] (or, when
/// dropped, at once).
pub(crate) struct Network {
    name: String,
    path: PathBuf,
    tools: NetworkTools,
    slirp: Option<Child>,
    group: i32,
    record: GroupRecord,
    socket: PathBuf,
}

impl Network {
    /// Makes namespace `name` and starts slirp4netns on it. A release's network outlives
    /// Berth (`outlive_berth`), as the release does; a build's dies with Berth.
    pub async fn start(
        tools: &NetworkTools,
        name: &str,
        outlive_berth: bool,
    ) -> Result<Network, String> {
        let path = Self::path_of(name);
        // The host's addresses are read while the namespace is made.
        let add = ["netns", "add", name];
        let (added, listed) = tokio::join!(run(&tools.ip, &add), host_address_list(&tools.ip));
        added.map_err(|e| format!("creating the network namespace failed: {e}"))?;
        let namespace_record = namespace_records(tools).join(name);
        if let Err(e) = std::fs::create_dir_all(namespace_records(tools))
            .and_then(|()| std::fs::write(&namespace_record, b""))
        {
            tracing::warn!(namespace = %name, error = %e, "cannot record a network namespace");
        }
        let socket = tools.run_dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let record = GroupRecord::new(&tools.run_dir, name);
        let mut network = Network {
            name: name.to_owned(),
            path,
            tools: tools.clone(),
            slirp: None,
            group: 0,
            record,
            socket,
        };
        let mut command = Command::new(&tools.slirp4netns);
        command
            .env_clear()
            .env("PATH", PATH)
            .args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-seccomp",
                "--netns-type=path",
                "--api-socket",
            ])
            .arg(&network.socket)
            .arg(&network.path)
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(!outlive_berth);
        let berth = std::process::id() as libc::pid_t;
        // SAFETY: the closures only make async-signal-safe calls (see
        // detach_and_die_with_berth).
        unsafe {
            if outlive_berth {
                command.pre_exec(|| process_group::detach());
            } else {
                command.pre_exec(move || process_group::detach_and_die_with_berth(berth));
            }
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                network.remove_namespace().await;
                return Err(if e.kind() == io::ErrorKind::NotFound {
                    format!(
                        "slirp4netns is not installed ({}): apt install slirp4netns",
                        tools.slirp4netns.display()
                    )
                } else {
                    format!("starting slirp4netns failed: {e}")
                });
            }
        };
        network.group = child.id().map_or(0, |pid| pid as i32);
        let _ = network.record.write(network.group, None);
        network.slirp = Some(child);
        network.wait_until_ready().await?;
        if let Err(e) = network.shut_out_the_host(listed).await {
            network.end().await;
            return Err(e);
        }
        Ok(network)
    }

    /// slirp4netns connects out from the host, so the host's own addresses (eth0's, not
    /// only loopback) would reach whatever listens on 0.0.0.0 there — Berth itself, with
    /// `BERTH_ADDR=0.0.0.0:…`. Inside the namespace every one of them is made unreachable
    /// (releases have no CAP_NET_ADMIN to change it back).
    async fn shut_out_the_host(&self, listed: Result<String, String>) -> Result<(), String> {
        let listed = listed.map_err(|e| format!("listing the host's addresses failed: {e}"))?;
        // One `ip` for every route (`-batch`), rather than one each.
        let routes: String = host_addresses(&listed)
            .iter()
            .map(|address| format!("route add unreachable {address}/32\n"))
            .collect();
        if routes.is_empty() {
            return Ok(());
        }
        run_with_input(&self.tools.ip, &["-n", &self.name, "-batch", "-"], &routes)
            .await
            .map_err(|e| format!("shutting the host's addresses out of the network failed: {e}"))
    }

    /// The network of a release an earlier Berth started, found by its records; `None`
    /// when its slirp4netns is gone.
    pub fn adopt(tools: &NetworkTools, name: &str) -> Option<Network> {
        let record = GroupRecord::new(&tools.run_dir, name);
        let group = record.read_group()?;
        if !process_group::has_live_members(group) {
            return None;
        }
        Some(Network {
            name: name.to_owned(),
            path: PathBuf::from("/run/netns").join(name),
            tools: tools.clone(),
            slirp: None,
            group,
            record,
            socket: tools.run_dir.join(format!("{name}.sock")),
        })
    }

    /// Berth is leaving: the network stays with its release.
    pub fn detach(mut self) {
        self.group = 0;
        if let Some(child) = self.slirp.take() {
            // Not killed on drop (see `start`); the runtime reaps it if it ends first.
            drop(child);
        }
    }

    /// Where the namespace of a network named `name` is (`ip netns` puts it there).
    pub fn path_of(name: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(name)
    }

    /// The namespace's path, for `--network ns:<path>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Publishes the namespace's `guest_port` on the host's `127.0.0.1:host_port`.
    pub async fn publish(&self, host_port: u16, guest_port: u16) -> Result<(), String> {
        let request = format!(
            "{{\"execute\": \"add_hostfwd\", \"arguments\": {{\"proto\": \"tcp\", \
             \"host_addr\": \"127.0.0.1\", \"host_port\": {host_port}, \"guest_port\": {guest_port}}}}}"
        );
        let answer = api(&self.socket, &request)
            .await
            .map_err(|e| format!("publishing port {host_port} failed: {e}"))?;
        if answer.contains("\"error\"") {
            return Err(format!("publishing port {host_port} failed: {answer}"));
        }
        Ok(())
    }

    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            // `list_hostfwd` answers (`{"entries": […]}`) once slirp4netns has configured
            // the namespace.
            if let Ok(answer) = api(&self.socket, "{\"execute\": \"list_hostfwd\"}").await {
                if answer.contains("\"entries\"") {
                    return Ok(());
                }
            }
            let exited = match self.slirp.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => None,
            };
            if exited.is_some() || tokio::time::Instant::now() >= deadline {
                self.end().await;
                return Err(match exited {
                    Some(status) => {
                        format!("slirp4netns exited ({status}) before the network was ready")
                    }
                    None => format!(
                        "slirp4netns did not set up the network within {} s",
                        READY_TIMEOUT.as_secs()
                    ),
                });
            }
            // A question on a local socket is cheap, and a deploy waits for the answer.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Ends slirp4netns and deletes the namespace.
    pub async fn stop(mut self) {
        self.end().await;
    }

    async fn end(&mut self) {
        if self.group > 0 {
            process_group::kill_and_wait(self.group, Duration::from_secs(2)).await;
            self.group = 0;
        }
        if let Some(mut child) = self.slirp.take() {
            let _ = child.wait().await;
        }
        self.record.remove();
        let _ = std::fs::remove_file(&self.socket);
        self.remove_namespace().await;
    }

    async fn remove_namespace(&self) {
        delete_namespace(&self.tools, &self.name).await;
    }
}

impl Drop for Network {
    /// A network nobody holds any more ends with its release: slirp4netns at once (the
    /// namespace is deleted at the next engine start, which a drop cannot wait for).
    fn drop(&mut self) {
        if self.group > 0 {
            process_group::signal(self.group, libc::SIGKILL);
            self.record.remove();
        }
    }
}

/// Ends the slirp4netns processes recorded in `run_dir` by a Berth that is gone, and
/// deletes the namespaces it recorded, but those of the adopted releases (`keep`).
pub(crate) async fn end_leftovers(
    tools: &NetworkTools,
    keep: &std::collections::HashSet<String>,
) -> io::Result<usize> {
    let ended = process_group::end_leftovers(&tools.run_dir, keep).await?;
    if let Ok(entries) = std::fs::read_dir(namespace_records(tools)) {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if keep.contains(&name) {
                continue;
            }
            if name.starts_with(NAMESPACE_PREFIX) && !name.contains('/') {
                delete_namespace(tools, &name).await;
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(ended)
}

fn namespace_records(tools: &NetworkTools) -> PathBuf {
    tools.run_dir.join("namespaces")
}

/// Deletes namespace `name` (gone already is as good) and its record.
async fn delete_namespace(tools: &NetworkTools, name: &str) {
    let path = PathBuf::from("/run/netns").join(name);
    let deleted = match run(&tools.ip, &["netns", "delete", name]).await {
        Ok(()) => true,
        Err(_) if !path.exists() => true,
        Err(e) => {
            tracing::warn!(namespace = %name, error = %e, "cannot delete a network namespace");
            false
        }
    };
    if deleted {
        let _ = std::fs::remove_file(namespace_records(tools).join(name));
    }
}

/// The host's IPv4 addresses but loopback (which slirp4netns already keeps out), from
/// `ip -o -4 addr show`.
fn host_addresses(listing: &str) -> Vec<std::net::Ipv4Addr> {
    let mut addresses: Vec<std::net::Ipv4Addr> = listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|word| *word == "inet")?;
            let (address, _) = words.next()?.split_once('/')?;
            address.parse().ok()
        })
        .filter(|address: &std::net::Ipv4Addr| !address.is_loopback())
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    addresses
}

/// Whether this host can make networks (the tools run): `None` when it can, else why not.
pub(crate) async fn unavailable(tools: &NetworkTools) -> Option<String> {
    if !succeeds(&tools.slirp4netns, &["--version"]).await {
        return Some(format!(
            "slirp4netns is not installed ({}): apt install slirp4netns",
            tools.slirp4netns.display()
        ));
    }
    if !succeeds(&tools.ip, &["netns", "list"]).await {
        return Some(format!(
            "`ip netns` does not work here ({}): apt install iproute2, and run Berth as root",
            tools.ip.display()
        ));
    }
    None
}

/// Whether `program args` runs and exits with success (its output discarded).
pub(crate) async fn succeeds(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

async fn run(program: &Path, args: &[&str]) -> Result<(), String> {
    output_of(program, args).await.map(|_| ())
}

/// `program args`'s standard output when it succeeds; its standard error when it fails.
async fn output_of(program: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .env_clear()
        .env("PATH", PATH)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await;
    finished(program, output)
}

/// `ip -o -4 addr show`: every IPv4 address of the host, one per line.
async fn host_address_list(ip: &Path) -> Result<String, String> {
    output_of(ip, &["-o", "-4", "addr", "show"]).await
}

/// [`run`], with `input` on its standard input.
async fn run_with_input(program: &Path, args: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new(program)
        .env_clear()
        .env("PATH", PATH)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .await
            .map_err(|e| format!("{}: {e}", program.display()))?;
    }
    finished(program, child.wait_with_output().await).map(|_| ())
}

fn finished(program: &Path, output: io::Result<std::process::Output>) -> Result<String, String> {
    let output = output.map_err(|e| format!("{}: {e}", program.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// One request to slirp4netns's API socket, and its answer.
async fn api(socket: &Path, request: &str) -> io::Result<String> {
    let mut stream = UnixStream::connect(socket).await?;
    stream.write_all(request.as_bytes()).await?;
    stream.shutdown().await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_addresses_are_read_without_loopback() {
        let listing = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever
5: wg0    inet 10.8.0.1/24 scope global wg0
6: eth0    inet 192.0.2.2/24 scope global secondary eth0";
        assert_eq!(
            host_addresses(listing),
            [
                "10.8.0.1".parse::<std::net::Ipv4Addr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
        assert!(host_addresses("").is_empty());
    }
}
