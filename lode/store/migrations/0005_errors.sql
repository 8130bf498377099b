-- Error tracking: one row per distinct error (by fingerprint) with its first and last occurrence and a count,
-- plus per-minute occurrence counts for rates and alerts. Alerts raised from those rates.
CREATE TABLE error_logs (
    id              bigserial PRIMARY KEY,
    fingerprint     text NOT NULL UNIQUE,          -- component, category, error type and the message's shape
    severity        text NOT NULL CHECK (severity IN ('warning', 'error', 'critical')),
    category        text NOT NULL,                  -- timeout, unavailable, parse, embedding, database, cache, ...
    component       text NOT NULL,                  -- the adapter or module that handled it
    error_type      text NOT NULL,
    message         text NOT NULL,
    stack           text,
    context         jsonb NOT NULL DEFAULT '{}',    -- scrubbed: never source code or secrets
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    count           bigint NOT NULL DEFAULT 1
);
CREATE INDEX error_logs_last_seen_idx ON error_logs (last_seen DESC);
CREATE INDEX error_logs_severity_idx ON error_logs (severity, last_seen DESC);
CREATE INDEX error_logs_component_idx ON error_logs (component, last_seen DESC);

CREATE TABLE error_occurrences (
    error_id        bigint NOT NULL REFERENCES error_logs(id) ON DELETE CASCADE,
    minute          timestamptz NOT NULL,
    severity        text NOT NULL,
    count           integer NOT NULL DEFAULT 1,
    PRIMARY KEY (error_id, minute)
);
CREATE INDEX error_occurrences_minute_idx ON error_occurrences (minute, severity);

-- The last 24 hours by severity, category and component.
CREATE VIEW error_summary_24h AS
SELECT o.severity, e.category, e.component, sum(o.count)::bigint AS occurrences,
       count(DISTINCT e.id) AS distinct_errors, max(e.last_seen) AS last_seen
  FROM error_occurrences o JOIN error_logs e ON e.id = o.error_id
 WHERE o.minute >= now() - interval '24 hours'
 GROUP BY o.severity, e.category, e.component;

-- Critical errors seen in the last 24 hours, newest first.
CREATE VIEW recent_critical_errors AS
SELECT id, fingerprint, category, component, error_type, message, context, first_seen, last_seen, count
  FROM error_logs
 WHERE severity = 'critical' AND last_seen >= now() - interval '24 hours'
 ORDER BY last_seen DESC;

-- Occurrences per hour and severity over the last 7 days.
CREATE VIEW error_rate_hourly AS
SELECT date_trunc('hour', minute) AS hour, severity, sum(count)::bigint AS occurrences
  FROM error_occurrences
 WHERE minute >= now() - interval '7 days'
 GROUP BY 1, 2;

-- One alert per rule and window (the hour it was first raised in); acknowledged ones stay for the record.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    rule            text NOT NULL,                  -- critical_per_hour, error_per_hour, warning_per_hour
    window_start    timestamptz NOT NULL,
    severity        text NOT NULL,
    value           bigint NOT NULL,                -- occurrences in the hour before the last evaluation
    threshold       bigint NOT NULL,
    message         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    notified_at     timestamptz,                    -- when the webhook accepted it
    acknowledged_at timestamptz,
    UNIQUE (rule, window_start)
);
CREATE INDEX alerts_open_idx ON alerts (created_at DESC) WHERE acknowledged_at IS NULL;
