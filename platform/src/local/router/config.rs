//! The two Caddy configurations the router loads — the edge's and the routes' (see the
//! parent module for why there are two) — in Caddy's JSON (only the parts Berth uses),
//! and how the routes are read back from them when a Berth starts after another one.

use super::Route;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

/// The server that serves every app by Host name.
const APPS_SERVER: &str = "berth-apps";
/// Each app's own server, behind its stable port, is `berth-app-<id>`; the app's route in
/// [`APPS_SERVER`] carries the same name as its `@id`.
const APP_PREFIX: &str = "berth-app-";

/// What the router asks of the two Caddies, derived from its routes on every change.
pub(super) struct Desired<'a> {
    /// The router's directory, where the sockets between the two Caddies are.
    pub dir: &'a Path,
    pub listen: SocketAddr,
    pub domain: &'a str,
    pub grace_period: Duration,
    pub routes: &'a BTreeMap<i64, Route>,
    /// Upstreams no route uses any more but whose in-flight requests are still counted
    /// (see `Router::drained`).
    pub draining: &'a [u16],
}

/// The socket on which the routes Caddy serves apps by Host name.
fn apps_socket(dir: &Path) -> PathBuf {
    dir.join("apps.sock")
}

/// The socket on which the routes Caddy serves one app, for its stable port.
pub(super) fn app_socket(dir: &Path, app_id: i64) -> PathBuf {
    dir.join(format!("app-{app_id}.sock"))
}

#[derive(Serialize, Deserialize)]
pub(super) struct CaddyConfig {
    admin: Admin,
    #[serde(default)]
    logging: Option<Logging>,
    apps: Apps,
}

#[derive(Serialize, Deserialize)]
struct Admin {
    listen: String,
    config: AdminConfig,
}

#[derive(Serialize, Deserialize)]
struct AdminConfig {
    /// Caddy would otherwise autosave every change into its own data directory; the
    /// router's files are the one copy.
    persist: bool,
}

#[derive(Serialize, Deserialize)]
struct Logging {
    logs: BTreeMap<String, Log>,
}

#[derive(Serialize, Deserialize)]
struct Log {
    level: String,
}

#[derive(Serialize, Deserialize)]
struct Apps {
    http: HttpApp,
}

#[derive(Serialize, Deserialize)]
struct HttpApp {
    /// How long a server that a reload replaced keeps its connections before Caddy closes
    /// them.
    grace_period: String,
    servers: BTreeMap<String, Server>,
}

#[derive(Serialize, Deserialize)]
struct Server {
    listen: Vec<String>,
    automatic_https: AutomaticHttps,
    routes: Vec<CaddyRoute>,
}

#[derive(Serialize, Deserialize)]
struct AutomaticHttps {
    disable: bool,
}

#[derive(Serialize, Deserialize)]
struct CaddyRoute {
    #[serde(rename = "@id", default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "match", default, skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<Matcher>,
    handle: Vec<Handler>,
    #[serde(default)]
    terminal: bool,
}

#[derive(Serialize, Deserialize)]
struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expression: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "handler", rename_all = "snake_case")]
enum Handler {
    /// No health checks, active or passive: Berth checks a release before switching to
    /// it, and a proxy that marked the only upstream down would answer 502 for a while
    /// after one failed request.
    ReverseProxy {
        upstreams: Vec<Upstream>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transport: Option<Transport>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        headers: Option<Headers>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flush_interval: Option<i64>,
    },
    StaticResponse {
        status_code: u16,
        headers: BTreeMap<String, Vec<String>>,
        body: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Upstream {
    dial: String,
}

#[derive(Serialize, Deserialize)]
struct Transport {
    protocol: String,
    keep_alive: KeepAlive,
}

#[derive(Serialize, Deserialize)]
struct KeepAlive {
    enabled: bool,
}

#[derive(Serialize, Deserialize)]
struct Headers {
    request: HeaderOps,
}

#[derive(Serialize, Deserialize)]
struct HeaderOps {
    set: BTreeMap<String, Vec<String>>,
}

impl CaddyConfig {
    /// The routes Caddy's configuration: apps by Host name on one socket, each app on a
    /// socket of its own, the releases behind them.
    pub fn routes(desired: &Desired<'_>, admin: &Path) -> CaddyConfig {
        let mut servers = BTreeMap::new();
        let mut by_host = Vec::new();
        for route in desired.routes.values() {
            let name = format!("{APP_PREFIX}{}", route.app_id);
            let host = format!("{}.{}.{}", route.app, route.team, desired.domain);
            by_host.push(CaddyRoute {
                id: Some(name.clone()),
                matchers: vec![Matcher {
                    host: Some(vec![host]),
                    expression: None,
                }],
                handle: vec![release_handler(route)],
                terminal: true,
            });
            let socket = app_socket(desired.dir, route.app_id);
            servers.insert(
                name,
                server(unix(&socket), vec![catch_all(release_handler(route))]),
            );
        }
        if !desired.draining.is_empty() {
            // Caddy forgets an upstream (and its count of in-flight requests) as soon as
            // no loaded handler names it, even while requests on it are still running; a
            // route that never matches keeps it known until it has drained.
            by_host.push(CaddyRoute {
                id: None,
                matchers: vec![Matcher {
                    host: None,
                    expression: Some("false".to_owned()),
                }],
                handle: vec![proxy(
                    desired.draining.iter().map(|p| loopback(*p)).collect(),
                )],
                terminal: true,
            });
        }
        by_host.push(catch_all(text(
            404,
            "no app is served at this address".to_owned(),
        )));
        servers.insert(
            APPS_SERVER.to_owned(),
            server(unix(&apps_socket(desired.dir)), by_host),
        );
        Self::with_servers(admin, desired.grace_period, servers)
    }

    /// The edge Caddy's configuration: the router's address and each app's stable port,
    /// each passed on to its socket of the routes Caddy. It changes only when apps (or
    /// their stable ports) come and go, never when an app switches releases.
    pub fn edge(desired: &Desired<'_>, admin: &Path) -> CaddyConfig {
        let mut servers = BTreeMap::new();
        servers.insert(
            APPS_SERVER.to_owned(),
            server(
                desired.listen.to_string(),
                vec![catch_all(to_routes(&apps_socket(desired.dir)))],
            ),
        );
        for route in desired.routes.values() {
            let stable = SocketAddr::new(desired.listen.ip(), route.port);
            servers.insert(
                format!("{APP_PREFIX}{}", route.app_id),
                server(
                    stable.to_string(),
                    vec![catch_all(to_routes(&app_socket(desired.dir, route.app_id)))],
                ),
            );
        }
        Self::with_servers(admin, desired.grace_period, servers)
    }

    fn with_servers(
        admin: &Path,
        grace_period: Duration,
        servers: BTreeMap<String, Server>,
    ) -> CaddyConfig {
        CaddyConfig {
            admin: Admin {
                listen: unix(admin),
                config: AdminConfig { persist: false },
            },
            // Caddy logs every admin request at INFO, and `drained` polls the admin API
            // 50 times a second; warnings and errors (a failing upstream, a port taken)
            // are what an operator reads its log for.
            logging: Some(Logging {
                logs: BTreeMap::from([(
                    "default".to_owned(),
                    Log {
                        level: "WARN".to_owned(),
                    },
                )]),
            }),
            apps: Apps {
                http: HttpApp {
                    grace_period: format!("{}ms", grace_period.as_millis()),
                    servers,
                },
            },
        }
    }

    /// The routes served by a routes configuration and the edge configuration beside it,
    /// as [`CaddyConfig::routes`] and [`CaddyConfig::edge`] wrote them. An app missing from
    /// either is left out: the next reconcile puts it back.
    /// The release ports a routes configuration keeps known while they drain (see
    /// [`CaddyConfig::routes`]).
    pub fn draining(&self) -> Vec<u16> {
        let Some(apps) = self.apps.http.servers.get(APPS_SERVER) else {
            return Vec::new();
        };
        apps.routes
            .iter()
            .filter(|route| {
                route.id.is_none()
                    && route
                        .matchers
                        .first()
                        .is_some_and(|m| m.expression.as_deref() == Some("false"))
            })
            .flat_map(|route| match route.handle.first() {
                Some(Handler::ReverseProxy { upstreams, .. }) => upstreams
                    .iter()
                    .filter_map(|u| dialled_port(&u.dial))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    pub fn read_back(routes: &CaddyConfig, edge: &CaddyConfig) -> BTreeMap<i64, Route> {
        let Some(apps) = routes.apps.http.servers.get(APPS_SERVER) else {
            return BTreeMap::new();
        };
        let mut read = BTreeMap::new();
        for route in &apps.routes {
            let Some(app_id) = route
                .id
                .as_deref()
                .and_then(|id| id.strip_prefix(APP_PREFIX))
                .and_then(|id| id.parse::<i64>().ok())
            else {
                continue;
            };
            let host = route
                .matchers
                .first()
                .and_then(|m| m.host.as_ref())
                .and_then(|hosts| hosts.first());
            let Some((app, rest)) = host.and_then(|h| h.split_once('.')) else {
                continue;
            };
            let Some((team, _domain)) = rest.split_once('.') else {
                continue;
            };
            let upstream = match route.handle.first() {
                Some(Handler::ReverseProxy { upstreams, .. }) => {
                    match upstreams.first().and_then(|u| dialled_port(&u.dial)) {
                        Some(port) => Some(port),
                        None => continue,
                    }
                }
                Some(Handler::StaticResponse { .. }) => None,
                None => continue,
            };
            let port = edge
                .apps
                .http
                .servers
                .get(&format!("{APP_PREFIX}{app_id}"))
                .and_then(|server| server.listen.first())
                .and_then(|listen| listen.parse::<SocketAddr>().ok())
                .map(|addr| addr.port());
            let Some(port) = port else {
                continue;
            };
            read.insert(
                app_id,
                Route {
                    app_id,
                    app: app.to_owned(),
                    team: team.to_owned(),
                    port,
                    upstream,
                },
            );
        }
        read
    }
}

fn server(listen: String, routes: Vec<CaddyRoute>) -> Server {
    Server {
        listen: vec![listen],
        // Apps are served over plain HTTP on this host's addresses; certificates are a
        // front proxy's business. Without this Caddy would try to obtain some.
        automatic_https: AutomaticHttps { disable: true },
        // No `logs`: Caddy then keeps no access log.
        routes,
    }
}

fn catch_all(handler: Handler) -> CaddyRoute {
    CaddyRoute {
        id: None,
        matchers: Vec::new(),
        handle: vec![handler],
        terminal: true,
    }
}

fn release_handler(route: &Route) -> Handler {
    match route.upstream {
        Some(port) => {
            let mut handler = proxy(vec![loopback(port)]);
            // The request comes from the edge over a UNIX socket, which Caddy cannot
            // trust as a proxy: it drops the X-Forwarded-For the edge set. The
            // placeholder is the header as the edge sent it (the client's address, which
            // the edge does not take from clients).
            if let Handler::ReverseProxy { headers, .. } = &mut handler {
                *headers = Some(Headers {
                    request: HeaderOps {
                        set: BTreeMap::from([(
                            "X-Forwarded-For".to_owned(),
                            vec!["{http.request.header.X-Forwarded-For}".to_owned()],
                        )]),
                    },
                });
            }
            handler
        }
        None => text(503, format!("{} has no running release", route.app)),
    }
}

/// The edge's way to the routes Caddy: a new connection for every request. A kept
/// connection would be closed by the routes Caddy's reload while idle, and a request sent
/// on it at that moment would fail; a socket of the routes Caddy, unlike a TCP one, is
/// handed over across reloads with its queue of connections.
fn to_routes(socket: &Path) -> Handler {
    Handler::ReverseProxy {
        upstreams: vec![Upstream { dial: unix(socket) }],
        transport: Some(Transport {
            protocol: "http".to_owned(),
            keep_alive: KeepAlive { enabled: false },
        }),
        headers: None,
        // The edge adds no buffering of its own to streamed answers.
        flush_interval: Some(-1),
    }
}

fn proxy(upstreams: Vec<Upstream>) -> Handler {
    Handler::ReverseProxy {
        upstreams,
        transport: None,
        headers: None,
        flush_interval: None,
    }
}

/// Releases listen on the host's loopback.
fn loopback(port: u16) -> Upstream {
    Upstream {
        dial: SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port).to_string(),
    }
}

fn unix(path: &Path) -> String {
    format!("unix/{}", path.display())
}

fn dialled_port(dial: &str) -> Option<u16> {
    dial.parse::<SocketAddr>().ok().map(|addr| addr.port())
}

fn text(status_code: u16, body: String) -> Handler {
    Handler::StaticResponse {
        status_code,
        headers: BTreeMap::from([(
            "Content-Type".to_owned(),
            vec!["text/plain; charset=utf-8".to_owned()],
        )]),
        body: body + "\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(app_id: i64, app: &str, port: u16, upstream: Option<u16>) -> Route {
        Route {
            app_id,
            app: app.to_owned(),
            team: "acme".to_owned(),
            port,
            upstream,
        }
    }

    fn desired<'a>(routes: &'a BTreeMap<i64, Route>, draining: &'a [u16]) -> Desired<'a> {
        Desired {
            dir: Path::new("/r"),
            listen: "127.0.0.1:8000".parse().unwrap(),
            domain: "apps.example.test",
            grace_period: Duration::from_millis(1500),
            routes,
            draining,
        }
    }

    #[test]
    fn the_routes_read_back_from_written_configs_are_those_they_were_built_from() {
        let routes = BTreeMap::from([
            (1, route(1, "web", 30001, Some(20005))),
            (2, route(2, "api", 30002, None)),
        ]);
        let desired = desired(&routes, &[20001]);
        let round_trip = |config: CaddyConfig| -> CaddyConfig {
            serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap()
        };
        let back = round_trip(CaddyConfig::routes(&desired, Path::new("/r/admin.sock")));
        let edge = round_trip(CaddyConfig::edge(&desired, Path::new("/r/edge.sock")));
        assert_eq!(CaddyConfig::read_back(&back, &edge), routes);
        assert_eq!(back.draining(), vec![20001]);
        let none = round_trip(CaddyConfig::routes(
            &self::desired(&routes, &[]),
            Path::new("/r/admin.sock"),
        ));
        assert!(none.draining().is_empty());
    }

    #[test]
    fn the_edge_passes_each_address_to_its_socket_and_the_routes_lead_to_releases() {
        let routes = BTreeMap::from([(7, route(7, "web", 30007, Some(20003)))]);
        let desired = desired(&routes, &[]);
        let edge =
            serde_json::to_value(CaddyConfig::edge(&desired, Path::new("/r/edge.sock"))).unwrap();
        assert_eq!(edge["admin"]["listen"], "unix//r/edge.sock");
        assert_eq!(edge["apps"]["http"]["grace_period"], "1500ms");
        let servers = &edge["apps"]["http"]["servers"];
        assert_eq!(servers["berth-apps"]["listen"][0], "127.0.0.1:8000");
        assert_eq!(servers["berth-app-7"]["listen"][0], "127.0.0.1:30007");
        let to_app = &servers["berth-app-7"]["routes"][0]["handle"][0];
        assert_eq!(to_app["upstreams"][0]["dial"], "unix//r/app-7.sock");
        assert_eq!(to_app["transport"]["keep_alive"]["enabled"], false);

        let back = serde_json::to_value(CaddyConfig::routes(&desired, Path::new("/r/admin.sock")))
            .unwrap();
        let servers = &back["apps"]["http"]["servers"];
        assert_eq!(servers["berth-app-7"]["listen"][0], "unix//r/app-7.sock");
        let by_host = &servers["berth-apps"]["routes"];
        assert_eq!(
            by_host[0]["match"][0]["host"][0],
            "web.acme.apps.example.test"
        );
        assert_eq!(
            by_host[0]["handle"][0]["upstreams"][0]["dial"],
            "127.0.0.1:20003"
        );
        // No draining upstreams: the app's route, then the catch-all.
        assert_eq!(by_host.as_array().unwrap().len(), 2);
        assert_eq!(by_host[1]["handle"][0]["status_code"], 404);
    }
}
