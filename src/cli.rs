//! The administration commands (`causerie user`, `token`, `invite`,
//! `backup`): run once against the store named by the same settings as the
//! server, while it runs. A ban made here reaches the running servers
//! through the store: each looks for new bans every couple of seconds
//! (`server::watch_bans`).

use crate::auth::{Auth, AuthError};
use crate::config::{Command, Config, TokenCommand, UserCommand};
use crate::store::{self, AccountChange, Store, StoreError};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

/// Why a command failed; said to the operator on standard error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}", .0.detail())]
    Store(#[from] StoreError),
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("there is no account named {0:?}")]
    NoSuchAccount(String),
    #[error("{0:?} is the last admin who is not banned; make another admin first")]
    LastAdmin(String),
    #[error("could not read the password from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("{0}")]
    Backup(#[from] store::backup::BackupError),
    #[error("the database was copied, but not its files: {0}")]
    FilesBackup(std::io::Error),
}

/// Runs one command; prints its result on standard output.
pub async fn run(command: Command, config: &Config) -> ExitCode {
    match execute(command, config).await {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("causerie: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: &Config) -> Result<String, CliError> {
    if let Command::Backup { path } = &command {
        store::backup::backup(&config.database_url, path).await?;
        let location = config.files_location();
        if location.starts_with("s3://") {
            return Ok(format!(
                "backed up to {}; the files are in {location}: copy the bucket with its own tools",
                path.display()
            ));
        }
        // The copy's files go beside it as the server's go beside its
        // database, so that a restore is two moves.
        let to = crate::config::files_beside(path);
        let n = crate::files::backup::copy_files(std::path::Path::new(&location), &to)
            .map_err(CliError::FilesBackup)?;
        return Ok(format!(
            "backed up to {} and {n} files to {}",
            path.display(),
            to.display()
        ));
    }
    let (store, _) = store::open(&config.database_url).await?;
    let out = with_store(command, config, store.clone()).await;
    store.close().await;
    out
}

async fn with_store(
    command: Command,
    config: &Config,
    store: Arc<dyn Store>,
) -> Result<String, CliError> {
    let auth = Auth::new(config.guests, config.bots()?, store.clone());
    match command {
        Command::User(UserCommand::Add { name, admin }) => {
            let password = read_password()?;
            let role = auth.add_account(name.trim(), &password, admin).await?;
            Ok(format!(
                "made the account {} ({})",
                name.trim(),
                role.as_str()
            ))
        }
        Command::User(UserCommand::Ban { name }) => {
            let name = account_name(store.as_ref(), &name).await?;
            changed(store.set_banned(&name, true).await?, &name)?;
            Ok(format!(
                "banned {name}: its connections close within seconds, its sessions and tokens stop"
            ))
        }
        Command::User(UserCommand::Unban { name }) => {
            let name = account_name(store.as_ref(), &name).await?;
            changed(store.set_banned(&name, false).await?, &name)?;
            Ok(format!("lifted the ban on {name}"))
        }
        Command::Token(TokenCommand::Add { name, label }) => {
            let name = account_name(store.as_ref(), &name).await?;
            let (token, _) = auth.create_token(&name, &label).await?;
            Ok(token)
        }
        Command::Invite { uses, expires } => {
            let ms = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
            let invite = auth.create_invite("command line", uses, ms).await?;
            Ok(format!("{}/invite/{}", config.public_url(), invite.code))
        }
        Command::Backup { .. } => Ok(String::new()),
    }
}

/// The stored spelling of an account's name.
async fn account_name(store: &dyn Store, name: &str) -> Result<String, CliError> {
    store
        .account(name.trim())
        .await?
        .map(|a| a.name)
        .ok_or_else(|| CliError::NoSuchAccount(name.trim().to_string()))
}

fn changed(change: AccountChange, name: &str) -> Result<(), CliError> {
    match change {
        AccountChange::Done => Ok(()),
        AccountChange::NoSuchAccount => Err(CliError::NoSuchAccount(name.to_string())),
        AccountChange::LastAdmin => Err(CliError::LastAdmin(name.to_string())),
    }
}

/// The first line of standard input, without its line ending.
fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
