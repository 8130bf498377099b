-- Running `lode serve` processes (lode/store/servers.py): the address each is bound to and a heartbeat, so that
-- `lode keys rm` can warn when the last key goes while a server listens beyond loopback. A server killed with
-- SIGKILL leaves its row behind; one silent for three of its own heartbeat intervals counts as gone.

CREATE TABLE servers (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host            text NOT NULL,              -- the address it is bound to, as given to `lode serve --host`
    port            integer NOT NULL,
    loopback        boolean NOT NULL,
    hostname        text NOT NULL,              -- the machine and process, for the warning
    pid             integer NOT NULL,
    beat_seconds    double precision NOT NULL CHECK (beat_seconds > 0),
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX servers_heartbeat_idx ON servers (heartbeat_at);
