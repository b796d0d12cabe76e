//! `bramble token create|list|delete` (bootstrap tokens for joining nodes); the command
//! lives in `bramble_auth::token_cli`.

pub use bramble_auth::token_cli::TokenArgs;

/// Runs `bramble token`.
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    Ok(bramble_auth::token_cli::run(args)?)
}
