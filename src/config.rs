//! Settings from flags, environment variables and a `.env` file (in that
//! order of precedence), validated once at start-up.

use clap::{Parser, Subcommand};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The names and defaults are the operator's contract of `PROTOCOL.md`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "causerie",
    version,
    about = "Causerie: a self-hostable real-time chat server"
)]
pub struct Config {
    /// Listen address.
    #[arg(long, env = "CAUSERIE_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// History store: `sqlite://PATH` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://causerie.db")]
    pub database_url: String,

    /// Redis for fan-out between nodes; unset means a single node.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Extra allowed WebSocket origins, comma-separated.
    #[arg(
        long,
        env = "CAUSERIE_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub origins: Vec<String>,

    /// Whether guests (a name, no account) may chat.
    #[arg(long, env = "CAUSERIE_GUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub guests: bool,

    /// Bot tokens set by the operator: `name:token,...`.
    #[arg(
        long,
        env = "CAUSERIE_BOT_TOKENS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub bot_tokens: Vec<String>,

    /// A text frame over this many bytes is refused with `too_large`.
    #[arg(long, env = "CAUSERIE_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// A frame over this many bytes closes the connection (code 1009).
    #[arg(long, env = "CAUSERIE_HARD_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub hard_frame_bytes: usize,

    /// Messages a user may send per second, sustained.
    #[arg(long, env = "CAUSERIE_RATE_PER_SEC", default_value_t = 10)]
    pub rate_per_sec: u32,

    /// Messages a user may send in a burst.
    #[arg(long, env = "CAUSERIE_RATE_BURST", default_value_t = 20)]
    pub rate_burst: u32,

    /// Messages one address may send per second, sustained (all its users).
    #[arg(long, env = "CAUSERIE_IP_RATE_PER_SEC", default_value_t = 50)]
    pub ip_rate_per_sec: u32,

    /// Messages one address may send in a burst.
    #[arg(long, env = "CAUSERIE_IP_RATE_BURST", default_value_t = 100)]
    pub ip_rate_burst: u32,

    /// WebSocket connection attempts one address may make per minute.
    #[arg(long, env = "CAUSERIE_CONNECTS_PER_MIN", default_value_t = 600)]
    pub connects_per_min: u32,

    /// Open WebSocket connections one address may hold.
    #[arg(long, env = "CAUSERIE_CONNECTIONS_PER_IP", default_value_t = 1000)]
    pub connections_per_ip: usize,

    /// Mark cookies `Secure` (set when the server is reached over HTTPS).
    #[arg(long, env = "CAUSERIE_SECURE_COOKIES", default_value_t = false, action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// A connection silent (no frame, no pong) this long is closed.
    #[arg(long, env = "CAUSERIE_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// New rooms one identity, and one address, may make per minute.
    #[arg(long, env = "CAUSERIE_ROOMS_PER_MIN", default_value_t = 10)]
    pub rooms_per_min: u32,

    /// Most public rooms the server keeps; past it, new ones are refused.
    #[arg(long, env = "CAUSERIE_MAX_ROOMS", default_value_t = 10_000)]
    pub max_rooms: u32,

    /// Rooms made by guests that never had a message are deleted after this long (e.g. `24h`, `90m`).
    #[arg(long, env = "CAUSERIE_EMPTY_ROOM_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub empty_room_ttl: Duration,

    /// Frames a connection may have queued before it counts as too slow and is cut.
    #[arg(long, env = "CAUSERIE_SEND_QUEUE", default_value_t = 512)]
    pub send_queue: usize,

    /// Seconds an HTTP connection has to send a whole request head, counted
    /// from when it is ready for one (just opened, or its previous answer
    /// sent): also how long an idle kept-alive connection stays open.
    #[arg(long, env = "CAUSERIE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a request body has to arrive whole after its head.
    #[arg(long, env = "CAUSERIE_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Open HTTP connections (WebSockets included) one address may hold;
    /// more are closed at accept. Unset: 1100, at most half the total the
    /// file limit allows (others still get in). Set: up to the total (a
    /// reverse proxy is one address for all its clients).
    #[arg(long, env = "CAUSERIE_HTTP_CONNECTIONS_PER_IP")]
    pub http_connections_per_ip: Option<usize>,
    /// Distinct guest names one browser (guest cookie) may hold, each for 30
    /// days after its last use.
    #[arg(long, env = "CAUSERIE_GUEST_NAMES_PER_BROWSER", default_value_t = crate::auth::GUEST_NAMES_PER_BROWSER)]
    pub guest_names_per_browser: u32,

    /// New guest names one address may take per hour (at most that many at once).
    #[arg(
        long,
        env = "CAUSERIE_GUEST_NAMES_PER_IP_PER_HOUR",
        default_value_t = 10
    )]
    pub guest_names_per_ip_per_hour: u32,

    /// Who may register once the server has its first account (which
    /// always may, and becomes admin): `open`, `invite` (through an invite
    /// link) or `closed` (`causerie user add` only).
    #[arg(long, env = "CAUSERIE_REGISTRATION", value_enum, default_value_t = crate::auth::Registration::Invite)]
    pub registration: crate::auth::Registration,

    /// The address people reach the server at, for the links it prints
    /// (`causerie invite`) and shows; default `http://CAUSERIE_ADDR`.
    #[arg(long, env = "CAUSERIE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Who runs this server, for push services (VAPID's `sub`): a
    /// `mailto:` or `https:` URL they may write to about its pushes.
    #[arg(
        long,
        env = "CAUSERIE_PUSH_CONTACT",
        default_value = "mailto:postmaster@localhost"
    )]
    pub push_contact: String,

    /// Longest wait for a push service, per push.
    #[arg(long, env = "CAUSERIE_PUSH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub push_timeout: Duration,

    /// Push endpoint origins exempt from the rules that keep pushes off
    /// this machine and its networks (https only, public addresses), e.g.
    /// `http://127.0.0.1:4567` for a test's own push service. Never needed
    /// for real push services.
    #[arg(
        long,
        env = "CAUSERIE_PUSH_EXEMPT",
        value_delimiter = ',',
        default_value = ""
    )]
    pub push_exempt: Vec<String>,

    /// Where uploaded files are kept: a directory, or S3-compatible object
    /// storage as `s3://BUCKET` (credentials, region and endpoint from the
    /// `AWS_*` variables, e.g. `AWS_ENDPOINT_URL`). Default: a directory
    /// next to the SQLite database (`causerie.db` → `causerie-files/`);
    /// with PostgreSQL, `./causerie-files` (several nodes need S3).
    #[arg(long, env = "CAUSERIE_FILES")]
    pub files: Option<String>,

    /// Largest file one upload may be, in bytes (25 MiB).
    #[arg(long, env = "CAUSERIE_MAX_FILE_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_file_bytes: u64,

    /// Uploads one account may make per minute.
    #[arg(long, env = "CAUSERIE_UPLOADS_PER_MIN", default_value_t = 30)]
    pub uploads_per_min: u32,

    /// Bytes of files one account may hold in all (its messages' files and
    /// its uploads not yet sent), in bytes (1 GiB).
    #[arg(long, env = "CAUSERIE_UPLOAD_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub upload_quota_bytes: u64,

    /// Largest image, in pixels (width × height), decoded to re-encode and
    /// thumbnail it; a larger one is refused.
    #[arg(long, env = "CAUSERIE_MAX_IMAGE_PIXELS", default_value_t = 40_000_000)]
    pub max_image_pixels: u64,

    /// Seconds an upload's body has to arrive whole (other requests have
    /// CAUSERIE_BODY_TIMEOUT_SECS).
    #[arg(long, env = "CAUSERIE_UPLOAD_TIMEOUT_SECS", default_value_t = 600)]
    pub upload_timeout_secs: u64,

    /// How often files nothing refers to are looked for and removed (an
    /// upload never sent goes after a day; a deleted message's file ten
    /// minutes after nothing refers to it).
    #[arg(long, env = "CAUSERIE_FILE_SWEEP", default_value = "10m", value_parser = humantime::parse_duration)]
    pub file_sweep: Duration,

    /// What to do; with none, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The administration commands: they read the same settings as the server
/// and work while it runs.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Accounts: make one, ban or lift a ban.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens for accounts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Prints a new invite link.
    Invite {
        /// How many registrations the link allows.
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// How long it stays usable (e.g. `7d`, `12h`, `30m`).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        expires: Duration,
    },
    /// Writes a consistent copy of the SQLite database to PATH while the
    /// server serves (PostgreSQL: use pg_dump).
    Backup {
        /// Where the copy goes; it must not exist yet.
        path: std::path::PathBuf,
    },
}

/// `causerie user ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Makes an account; its password is read from standard input.
    Add {
        name: String,
        /// Makes it an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Bans an account: its connections close, its sessions and tokens stop;
    /// the name stays taken.
    Ban { name: String },
    /// Lifts a ban.
    Unban { name: String },
}

/// `causerie token ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Prints a new API token for the account NAME.
    Add {
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "command line")]
        label: String,
    },
}

/// A configuration that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("CAUSERIE_BOT_TOKENS: expected name:token, got {0:?}")]
    BotToken(String),
    #[error("CAUSERIE_BOT_TOKENS: invalid bot name {0:?}: {1}")]
    BotName(String, String),
    #[error("CAUSERIE_ORIGINS: {0:?} is not an origin like https://chat.example.org")]
    Origin(String),
    #[error("limits must be positive and the hard frame limit at least the soft one")]
    Limits,
    #[error("CAUSERIE_PUBLIC_URL: {0:?} is not an address like https://chat.example.org")]
    PublicUrl(String),
}

impl Config {
    /// Reads `.env` (if present), then the environment and the command line.
    pub fn load() -> Result<Self, ConfigError> {
        // A missing .env is normal; the values already in the environment win.
        let _ = dotenvy::dotenv();
        let c = Config::parse();
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.bots()?;
        for o in self.extra_origins() {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(ConfigError::Origin(o.to_string()));
            }
        }
        if let Some(u) = &self.public_url
            && (!(u.starts_with("http://") || u.starts_with("https://"))
                || u.contains(char::is_whitespace))
        {
            return Err(ConfigError::PublicUrl(u.clone()));
        }
        if self.max_frame_bytes == 0
            || self.hard_frame_bytes < self.max_frame_bytes
            || self.rate_per_sec == 0
            || self.rate_burst == 0
            || self.ip_rate_per_sec == 0
            || self.ip_rate_burst == 0
            || self.connects_per_min == 0
            || self.connections_per_ip == 0
            || self.send_queue == 0
            || self.idle_timeout_secs == 0
            || self.rooms_per_min == 0
            || self.max_rooms == 0
            || self.empty_room_ttl.is_zero()
            || self.header_timeout_secs == 0
            || self.body_timeout_secs == 0
            || self.http_connections_per_ip == Some(0)
            || self.guest_names_per_browser == 0
            || self.guest_names_per_ip_per_hour == 0
            || self.max_file_bytes == 0
            || self.uploads_per_min == 0
            || self.upload_quota_bytes == 0
            || self.max_image_pixels == 0
            || self.upload_timeout_secs == 0
            || self.file_sweep.is_zero()
        {
            return Err(ConfigError::Limits);
        }
        Ok(())
    }

    /// Operator bot tokens, token → bot name.
    pub fn bots(&self) -> Result<HashMap<String, String>, ConfigError> {
        let mut out = HashMap::new();
        // Name key → name: two bots may not look the same.
        let mut keys: HashMap<String, String> = HashMap::new();
        for entry in self
            .bot_tokens
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            let (name, token) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError::BotToken(entry.to_string()))?;
            if token.is_empty() {
                return Err(ConfigError::BotToken(entry.to_string()));
            }
            crate::names::check_new_name(name)
                .map_err(|e| ConfigError::BotName(name.into(), e.to_string()))?;
            if let Some(other) = keys.insert(crate::names::name_key(name), name.to_string())
                && other != name
            {
                return Err(ConfigError::BotName(
                    name.into(),
                    format!("it looks the same as the bot name {other:?}"),
                ));
            }
            out.insert(token.to_string(), name.to_string());
        }
        Ok(out)
    }

    /// The configured extra origins, without blanks.
    pub fn extra_origins(&self) -> impl Iterator<Item = &str> {
        self.origins
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    /// The rate limits' settings.
    pub fn limits(&self) -> crate::limits::LimitSettings {
        crate::limits::LimitSettings {
            user_per_sec: self.rate_per_sec,
            user_burst: self.rate_burst,
            ip_per_sec: self.ip_rate_per_sec,
            ip_burst: self.ip_rate_burst,
            connects_per_min: self.connects_per_min,
            connections_per_ip: self.connections_per_ip,
            rooms_per_min: self.rooms_per_min,
            guest_names_per_ip_per_hour: self.guest_names_per_ip_per_hour,
        }
    }

    /// How HTTP connections are timed out and capped.
    pub fn http(&self) -> crate::http::listen::HttpSettings {
        crate::http::listen::HttpSettings {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            upload_timeout: Duration::from_secs(self.upload_timeout_secs),
            per_ip: self.http_connections_per_ip,
        }
    }

    /// Where people reach the server, without a trailing `/`.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.addr),
        }
    }

    /// Where uploaded files are kept: `CAUSERIE_FILES`, else a directory
    /// next to the SQLite database (`chat.db` → `chat-files`), else
    /// `causerie-files` in the working directory.
    pub fn files_location(&self) -> String {
        if let Some(f) = self.files.as_deref().filter(|f| !f.trim().is_empty()) {
            return f.trim().to_string();
        }
        let db = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"));
        match db {
            Some(path) => files_beside(std::path::Path::new(path))
                .to_string_lossy()
                .into_owned(),
            None => "causerie-files".to_string(),
        }
    }

    /// The limits on uploads.
    pub fn file_limits(&self) -> crate::files::FileLimits {
        crate::files::FileLimits {
            max_bytes: self.max_file_bytes,
            per_min: self.uploads_per_min,
            quota_bytes: self.upload_quota_bytes,
            max_pixels: self.max_image_pixels,
        }
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

/// The files directory that goes with a SQLite database file (or its
/// backup): beside it, named after it.
pub fn files_beside(db: &std::path::Path) -> std::path::PathBuf {
    // Query parameters (`?mode=rwc`) are not part of the name.
    let name = db.to_string_lossy();
    let name = name.split('?').next().unwrap_or_default();
    let db = std::path::Path::new(name);
    let stem = db
        .file_stem()
        .map_or_else(|| "causerie".into(), |s| s.to_string_lossy().into_owned());
    db.with_file_name(format!("{stem}-files"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_beside_the_database() {
        let c = |url: &str| Config::parse_from(["causerie", "--database-url", url]);
        assert_eq!(
            c("sqlite://data/chat.db").files_location(),
            "data/chat-files"
        );
        assert_eq!(
            c("sqlite://chat.db?mode=rwc").files_location(),
            "chat-files"
        );
        assert_eq!(
            c("postgres://db/causerie").files_location(),
            "causerie-files"
        );
    }

    fn bots(tokens: &str) -> Result<HashMap<String, String>, ConfigError> {
        Config::parse_from(["causerie", "--bot-tokens", tokens]).bots()
    }

    #[test]
    fn bot_names_follow_the_name_rules() {
        assert!(bots("rôbot:t1,helper:t2").is_ok());
        for bad in ["ｂｏｔ:t", "dаve:t", "bot\u{3164}:t"] {
            assert!(matches!(bots(bad), Err(ConfigError::BotName(..))), "{bad}");
        }
        // Two bots that look the same.
        assert!(matches!(
            bots("rôbot:t1,RÔBOT:t2"),
            Err(ConfigError::BotName(..))
        ));
    }
}
