-- Rate limits: a token bucket per tenant at intake, and an optional send cap per provider config
-- enforced across every worker (a Twilio number's messages per second, say). 0 means no limit.
ALTER TABLE communication.tenants
    ADD COLUMN rate_per_second numeric NOT NULL DEFAULT 500 CHECK (rate_per_second >= 0),
    ADD COLUMN rate_burst      int NOT NULL DEFAULT 1000 CHECK (rate_burst >= 0);

ALTER TABLE communication.provider_configs
    ADD COLUMN send_rate_per_second numeric NOT NULL DEFAULT 0 CHECK (send_rate_per_second >= 0);
