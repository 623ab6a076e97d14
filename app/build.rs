// Embedded migrations must be rebuilt when a new .sql file appears.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
