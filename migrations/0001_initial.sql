-- Organisations, API keys, tunnels, the per-day creation counter and the audit log.
-- Timestamps are timestamptz; the service passes its own clock's time in (so tests can move time).

CREATE TABLE organizations (
  id                 uuid PRIMARY KEY,
  name               text NOT NULL UNIQUE,
  disabled           boolean NOT NULL DEFAULT false,
  -- NULL: use controlplane.daily_create_limit from the configuration.
  daily_create_limit integer CHECK (daily_create_limit IS NULL OR daily_create_limit >= 0),
  created_at         timestamptz NOT NULL
);

CREATE TABLE api_keys (
  id              uuid PRIMARY KEY,
  organization_id uuid NOT NULL REFERENCES organizations(id),
  scope           text NOT NULL CHECK (scope IN ('admin', 'member')),
  description     text,
  -- SHA-256 (lowercase hex) of the whole key string; the key itself is shown once and never stored.
  secret_sha256   text NOT NULL CHECK (length(secret_sha256) = 64),
  created_at      timestamptz NOT NULL,
  revoked_at      timestamptz
);
CREATE INDEX api_keys_org ON api_keys (organization_id, created_at);

CREATE TABLE tunnels (
  id                      uuid PRIMARY KEY,
  organization_id         uuid NOT NULL REFERENCES organizations(id),
  tunnel_name             text NOT NULL,
  description             text,
  tls_mode                text NOT NULL CHECK (tls_mode IN ('edge', 'passthrough')),
  -- 'deleted' is internal: finalised tunnels are kept for the audit trail but are invisible.
  status                  text NOT NULL CHECK (status IN ('awaiting_cert', 'active', 'delete_pending', 'deleted')),
  secret_sha256           text NOT NULL CHECK (length(secret_sha256) = 64),
  cert_pem                text,
  cert_fingerprint_sha256 text,
  cert_expires_at         timestamptz,
  last_connected_at       timestamptz,
  last_connected_ip_addr  text,
  currently_connected     boolean NOT NULL DEFAULT false,
  restore_deadline_at     timestamptz,
  -- The caller's JSON object as compact text (kept as given: jsonb would reorder keys).
  metadata                text NOT NULL DEFAULT '{}',
  created_at              timestamptz NOT NULL,
  updated_at              timestamptz NOT NULL,
  finalized_at            timestamptz,
  CHECK ((status = 'delete_pending') = (restore_deadline_at IS NOT NULL))
);
-- Names are global DNS labels: unique among tunnels that are not finalised. This index is what
-- makes two simultaneous creates of one name end with exactly one winner.
CREATE UNIQUE INDEX tunnels_live_name ON tunnels (tunnel_name) WHERE status <> 'deleted';
CREATE INDEX tunnels_org_list ON tunnels (organization_id, created_at, id) WHERE status <> 'deleted';
CREATE INDEX tunnels_reaper ON tunnels (restore_deadline_at) WHERE status = 'delete_pending';

-- Tunnels created per organisation per UTC day (the daily creation limit, PROTOCOL.md §8 A28).
CREATE TABLE tunnel_create_counts (
  organization_id uuid NOT NULL REFERENCES organizations(id),
  day             date NOT NULL,
  created         integer NOT NULL,
  PRIMARY KEY (organization_id, day)
);

CREATE TABLE audit_log (
  id              bigserial PRIMARY KEY,
  at              timestamptz NOT NULL,
  organization_id uuid REFERENCES organizations(id),
  api_key_id      uuid,
  action          text NOT NULL,
  tunnel_id       uuid,
  source_ip       text,
  detail          text
);
CREATE INDEX audit_log_org ON audit_log (organization_id, id);

-- Timestamps cross the boundary as integer microseconds since the epoch: exact both ways.
CREATE FUNCTION inkwire_ts(us bigint) RETURNS timestamptz
  LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT 'epoch'::timestamptz + us * interval '1 microsecond' $$;
CREATE FUNCTION inkwire_us(t timestamptz) RETURNS bigint
  LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint $$;
