//! Environment reading. The environment is process-wide, so this module has
//! a single test whose steps run in order, alone in a child process
//! (`own_process`, see `main.rs`): its `set_var` never reaches another test.

use libhoney::transmission::Discard;
use libhoney::{Client, Config, ConfigError, SendError, DEFAULT_API_HOST};

const VARS: [&str; 4] = [
    "HONEYCOMB_API_KEY",
    "HONEYCOMB_WRITEKEY",
    "HONEYCOMB_DATASET",
    "HONEYCOMB_API_ENDPOINT",
];

fn clear() {
    for v in VARS {
        std::env::remove_var(v);
    }
}

fn client(config: Config) -> Client {
    Client::new(config.transmission(Discard::new())).expect("valid config")
}

#[test]
fn environment_fills_only_what_code_left_unset() {
    if !crate::own_process::alone(
        module_path!(),
        "environment_fills_only_what_code_left_unset",
    ) {
        return;
    }
    clear();

    // Nothing anywhere: no key, no dataset, the default host.
    let c = client(Config::new());
    assert_eq!(c.config().settings().api_key(), None);
    assert_eq!(c.config().settings().dataset(), None);
    assert_eq!(c.config().settings().api_host(), DEFAULT_API_HOST);
    let mut ev = c.new_event();
    ev.add_field("x", 1);
    assert_eq!(ev.send(), Err(SendError::MissingApiKey));

    // HONEYCOMB_WRITEKEY is the fallback...
    std::env::set_var("HONEYCOMB_WRITEKEY", "writekey-from-env");
    assert_eq!(
        client(Config::new()).config().settings().api_key(),
        Some("writekey-from-env")
    );
    // ...HONEYCOMB_API_KEY wins over it...
    std::env::set_var("HONEYCOMB_API_KEY", "apikey-from-env");
    assert_eq!(
        client(Config::new()).config().settings().api_key(),
        Some("apikey-from-env")
    );
    // ...unless it is blank.
    std::env::set_var("HONEYCOMB_API_KEY", "  ");
    assert_eq!(
        client(Config::new()).config().settings().api_key(),
        Some("writekey-from-env")
    );
    std::env::set_var("HONEYCOMB_API_KEY", "apikey-from-env");

    std::env::set_var("HONEYCOMB_DATASET", "dataset-from-env");
    std::env::set_var("HONEYCOMB_API_ENDPOINT", "http://endpoint-from-env:8080");
    let c = client(Config::new());
    assert_eq!(c.config().settings().api_key(), Some("apikey-from-env"));
    assert_eq!(c.config().settings().dataset(), Some("dataset-from-env"));
    assert_eq!(
        c.config().settings().api_host(),
        "http://endpoint-from-env:8080"
    );
    let ev = c.new_event();
    assert_eq!(ev.dataset(), "dataset-from-env");
    assert_eq!(ev.api_host(), "http://endpoint-from-env:8080");

    // Values set in code win over the environment, option by option.
    let c = client(Config::new().api_key("code-key"));
    assert_eq!(c.config().settings().api_key(), Some("code-key"));
    assert_eq!(c.config().settings().dataset(), Some("dataset-from-env"));
    let c = client(
        Config::new()
            .dataset("code-ds")
            .api_host("http://code-host"),
    );
    assert_eq!(c.config().settings().api_key(), Some("apikey-from-env"));
    assert_eq!(c.config().settings().dataset(), Some("code-ds"));
    assert_eq!(c.config().settings().api_host(), "http://code-host");
    // An explicitly empty value set in code is still "set in code".
    let c = client(Config::new().dataset(""));
    assert_eq!(c.config().settings().dataset(), Some("unknown_dataset"));

    // read_env(false) ignores the environment entirely.
    let c = client(Config::new().read_env(false));
    assert_eq!(c.config().settings().api_key(), None);
    assert_eq!(c.config().settings().dataset(), None);
    assert_eq!(c.config().settings().api_host(), DEFAULT_API_HOST);

    // Dataset rules apply to environment values too: an environment key trims.
    std::env::set_var("HONEYCOMB_DATASET", "  padded  ");
    assert_eq!(
        client(Config::new()).config().settings().dataset(),
        Some("padded")
    );
    // A classic key from the environment keeps the whitespace.
    std::env::set_var("HONEYCOMB_API_KEY", "c1a551c000d68f9ed1e96432ac1a3380");
    assert_eq!(
        client(Config::new()).config().settings().dataset(),
        Some("  padded  ")
    );
    // A blank environment dataset counts as unset.
    std::env::set_var("HONEYCOMB_DATASET", "   ");
    let c = client(Config::new());
    assert_eq!(c.config().settings().dataset(), None);
    let mut ev = c.new_event();
    ev.add_field("x", 1);
    assert_eq!(ev.send(), Err(SendError::MissingDataset));

    // Keys and endpoints from secret files often end in a newline: trimmed.
    std::env::set_var("HONEYCOMB_API_KEY", "key-from-a-file\n");
    std::env::set_var("HONEYCOMB_API_ENDPOINT", " http://endpoint-from-file:1 \n");
    let c = client(Config::new());
    assert_eq!(c.config().settings().api_key(), Some("key-from-a-file"));
    assert_eq!(
        c.config().settings().api_host(),
        "http://endpoint-from-file:1"
    );

    // A malformed endpoint from the environment is a ConfigError, not a panic.
    std::env::set_var("HONEYCOMB_API_ENDPOINT", "api.honeycomb.io");
    match Client::new(Config::new().transmission(Discard::new())) {
        Err(ConfigError::InvalidApiHost { host, .. }) => assert_eq!(host, "api.honeycomb.io"),
        other => panic!("{other:?}"),
    }
    // ...and is ignored when the host is set in code or reading is off.
    client(Config::new().api_host("https://api.honeycomb.io"));
    client(Config::new().read_env(false));

    clear();
}
