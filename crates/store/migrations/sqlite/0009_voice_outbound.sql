-- Voice: whether a trunk's P-Asserted-Identity is believed (RFC 3325: only a peer inside the
-- trust domain may assert who is calling; from any other peer the header is ignored and the
-- caller is taken from From).
ALTER TABLE voice_trunks ADD COLUMN trust_identity INTEGER NOT NULL DEFAULT 0;
