-- Tracing (docs/operations.md): a message keeps the W3C trace context of the request that
-- created it, so the events its later changes cause (callbacks included) join its trace. NULL
-- while tracing is off.
ALTER TABLE communication.message_logs ADD COLUMN trace_parent text;
