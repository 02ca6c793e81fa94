//! The stampede binary: parse the command line, run, map the outcome to a
//! documented exit code. Everything else lives in the library.

use clap::Parser;

fn main() {
    let cli = stampede::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stampede: cannot start the async runtime: {e}");
            std::process::exit(stampede::exit::RUNTIME);
        }
    };
    let code = match runtime.block_on(stampede::main_with(cli)) {
        Ok(code) => code,
        Err(e) => {
            let mut msg = format!("stampede: error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!("\n  caused by: {s}"));
                source = s.source();
            }
            // Error chains may quote what a server sent back: no secret.
            eprintln!("{}", stampede::secrets::redact(&msg));
            e.exit_code()
        }
    };
    // Client tasks may still be closing sockets: do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
