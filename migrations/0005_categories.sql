-- Message categories and the per-tenant fallback policy: a tenant may let its transactional
-- messages (OTP, receipts) fall back to the platform's system default while its marketing must
-- never leave its own provider account.
ALTER TABLE communication.message_logs
    ADD COLUMN category text NOT NULL DEFAULT 'transactional' CHECK (category IN ('transactional', 'marketing'));

ALTER TABLE communication.tenants
    ADD COLUMN fallback_categories text[] NOT NULL DEFAULT '{transactional}'
        CHECK (fallback_categories <@ ARRAY['transactional', 'marketing']);
