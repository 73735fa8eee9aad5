-- The users table and login failures as the first release made them (IF NOT EXISTS: a file
-- made before schema_version existed already has them, and is adopted).
CREATE TABLE IF NOT EXISTS users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_newest ON users (created_at DESC, id DESC);
-- Failed logins per user id, any id (one of no user too: a lockout must not tell them apart).
CREATE TABLE IF NOT EXISTS login_failures (
    user_id   INTEGER NOT NULL,
    failed_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_user ON login_failures (user_id, failed_at);
CREATE INDEX IF NOT EXISTS login_failures_by_time ON login_failures (failed_at);
