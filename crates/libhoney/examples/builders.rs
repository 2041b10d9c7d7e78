//! "Advanced usage: utilizing builders": builders carry fields for one
//! component of the application; clones refine them further.
//!
//! ```text
//! cargo run -p libhoney-sdk --example builders
//! ```

#[path = "support/mod.rs"]
mod support;

use libhoney::Client;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _receiver) = support::config("builders")?;
    let client = Client::new(config)?;
    client.add_field("service.name", "shop");

    // Everything the database layer sends shares these fields.
    let mut db = client.new_builder();
    db.add_field("component", "db")
        .add_field("db.system", "postgresql");

    // A clone copies the fields and dynamic fields; changes stay in the clone.
    let mut users = db.clone();
    users.add_field("db.table", "users");
    let mut orders = db.clone();
    orders
        .add_field("db.table", "orders")
        .set_dataset("builders-orders");

    for (builder, query_ms) in [(&users, 1.2), (&orders, 7.9), (&users, 0.8)] {
        let mut ev = builder.new_event();
        ev.add_field("duration_ms", query_ms);
        ev.send()?;
    }
    // The original builder never saw db.table.
    assert!(db.new_event().get("db.table").is_none());

    client.close()?;
    Ok(())
}
