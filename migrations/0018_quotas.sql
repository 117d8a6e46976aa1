-- Quotas (docs/usage.md#quotas): per tenant, channel and UTC calendar month, a soft limit (a
-- warning) and a hard limit (intake refuses beyond it), in messages for email and segments for
-- SMS. {"email": {"soft_limit": 8000, "hard_limit": 10000}, "sms": {...}}; a channel absent has
-- no quota.
ALTER TABLE communication.tenants ADD COLUMN quotas jsonb NOT NULL DEFAULT '{}';

-- Each threshold alert once per tenant, channel, month and level: its row and its account event
-- are written by one statement, so a retried alert neither repeats nor goes missing.
CREATE TABLE communication.quota_alerts (
    tenant_id  text NOT NULL,
    channel    text NOT NULL,
    month      date NOT NULL,
    level      text NOT NULL CHECK (level IN ('warning', 'exceeded')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel, month, level)
);
