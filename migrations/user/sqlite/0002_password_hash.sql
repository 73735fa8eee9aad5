-- Issue #13: an argon2id hash per user; NULL: the user has no password. No answer selects it.
ALTER TABLE users ADD COLUMN password_hash TEXT;
