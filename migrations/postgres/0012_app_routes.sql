-- Each app on the local engine keeps one address for good (issue 14): its stable port, on
-- which the router (Caddy) serves it whatever release runs; given at its first deploy.
ALTER TABLE apps ADD COLUMN route_port BIGINT;
CREATE UNIQUE INDEX apps_route_port ON apps(route_port) WHERE route_port IS NOT NULL;
