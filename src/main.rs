//! `slatis-sync`: signed Slatis booking webhooks in, a durable queue, CRM sync out.
//!
//! Exit codes: 0 success; 1 a command failed (invalid config, storage error, a
//! webhook not accepted, a job not found); 2 bad usage.

mod commands;
mod connectors;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc: the request path allocates and frees small buffers on two threads at a high
/// rate, where glibc's allocator spent about a tenth of the process's CPU (issue 11's
/// profile); mimalloc's thread-local free lists cost a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

/// Signed Slatis booking webhooks in, a durable queue, CRM sync out.
#[derive(Parser)]
#[command(name = "slatis-sync", version, about, propagate_version = true)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SLATIS_SYNC_LOG_FORMAT")]
    log_format: LogFormat,
    /// The config file [default: $SLATIS_SYNC_CONFIG, then ./slatis-sync.yaml, then ./config.example.yaml]
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// `--config`, else `$SLATIS_SYNC_CONFIG`, else `./slatis-sync.yaml` if it exists, else
    /// `./config.example.yaml`.
    fn config_path(&self) -> PathBuf {
        if let Some(p) = &self.config {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("SLATIS_SYNC_CONFIG").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let own = PathBuf::from("slatis-sync.yaml");
        if own.exists() {
            own
        } else {
            PathBuf::from("config.example.yaml")
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the webhook ingress and the workers (and the admin listener if configured).
    Serve,
    /// Load and check the config; exit 1 with every error found.
    Validate,
    /// Print each step of each job an event would make, as it would be sent (nothing is sent).
    Render {
        /// The tenant the event is for.
        #[arg(long)]
        tenant: String,
        /// The event file (a Slatis delivery body).
        #[arg(long)]
        event: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the mapping tests kept next to the config (`<config stem>.tests/`): each event
    /// through its tenant's routes, nothing sent, against the requests expected; exit 1 with
    /// every difference on a mismatch.
    Test {
        /// Only the cases of this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print the x-slatis-signature header value for a body (a file, or stdin).
    Sign {
        /// The signing secret.
        #[arg(long, env = "SLATIS_SIGNING_SECRET", hide_env_values = true)]
        secret: String,
        /// The body file; stdin when absent.
        file: Option<PathBuf>,
    },
    /// Sign an event and POST it, as Slatis would (a test delivery).
    Send {
        /// The webhook URL, e.g. http://127.0.0.1:8080/webhooks/demo.
        #[arg(long)]
        url: String,
        /// The signing secret.
        #[arg(long, env = "SLATIS_SIGNING_SECRET", hide_env_values = true)]
        secret: String,
        /// The event file.
        file: PathBuf,
    },
    /// Apply pending schema migrations of storage.url (serve applies them at start too).
    Migrate {
        /// Only list the pending migrations; exit 1 if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Inspect and replay dead letters.
    Dlq {
        #[command(subcommand)]
        command: commands::dlq::DlqCommand,
    },
    /// Manage the tenant's Slatis webhook through the Slatis API (its slatis_api_key).
    Webhooks(commands::webhooks::WebhooksArgs),
    /// Feed past bookings (GET /v1/bookings) through the tenant's routes, each as the event
    /// its status implies; what the tenant already received is skipped. Resumable.
    Backfill(commands::backfill::BackfillArgs),
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// `--version`: the release and the connector types compiled in (cargo features), so a
/// deployer sees at once whether a binary can run their config.
fn version() -> &'static str {
    let connectors = slatis_core::connector::registered();
    let line = format!(
        "{} (connectors: {})",
        env!("CARGO_PKG_VERSION"),
        if connectors.is_empty() {
            "none".to_owned()
        } else {
            connectors.join(", ")
        }
    );
    // once per process, for clap's `&'static str`
    Box::leak(line.into_boxed_str())
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().version(version()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    init_tracing(cli.log_format);
    let config = cli.config_path();
    let result = match cli.command {
        Command::Serve => commands::serve::run(&config).await,
        Command::Validate => commands::validate::run(&config),
        Command::Render {
            tenant,
            event,
            json,
        } => commands::render::run(&config, &tenant, &event, json).await,
        Command::Test { tenant } => commands::test::run(&config, tenant.as_deref()).await,
        Command::Sign { secret, file } => commands::send::sign(&secret, file.as_deref()),
        Command::Send { url, secret, file } => commands::send::send(&url, &secret, &file).await,
        Command::Migrate { check } => commands::migrate::run(&config, check).await,
        Command::Dlq { command } => commands::dlq::run(&config, command).await,
        Command::Webhooks(args) => commands::webhooks::run(&config, args).await,
        Command::Backfill(args) => commands::backfill::run(&config, args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
