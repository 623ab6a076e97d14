//! Cuts the browser WASM (linked with `--emit-relocs`) at its lazy routes: a main module for
//! wasm-bindgen, one chunk per route plus chunks for code several routes share, the loader the
//! main module imports, and the manifest Leptos reads to preload the chunks of the page it
//! renders.
//!
//! Usage: `agentkey-wasm-split <linked.wasm> <main-out.wasm> <pkg-dir> <output-name>`

use std::{collections::BTreeMap, path::PathBuf};

use eyre::{WrapErr, bail};

/// File names Leptos' `HydrationScripts` looks for in the pkg directory.
const LOADER: &str = "__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";

fn main() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--version") {
        println!("agentkey-wasm-split {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let [input, main_out, pkg_dir, name] = args.as_slice() else {
        bail!("usage: agentkey-wasm-split <linked.wasm> <main-out.wasm> <pkg-dir> <output-name>");
    };
    let wasm = std::fs::read(input).wrap_err_with(|| format!("reading {input}"))?;
    let (main_out, pkg_dir) = (PathBuf::from(main_out), PathBuf::from(pkg_dir));
    let link_name = format!("./{LOADER}");
    let main_module = format!("./{name}.js");

    let mut options = wasm_split_cli_support::Options::new(&wasm);
    options.output_dir = &pkg_dir;
    options.main_out_path = &main_out;
    options.link_name = &link_name;
    options.main_module = &main_module;
    let split = wasm_split_cli_support::transform(options)?;

    let manifest: BTreeMap<_, _> = split.prefetch_map.into_iter().collect();
    std::fs::write(pkg_dir.join(MANIFEST), serde_json::to_string_pretty(&manifest)?)?;
    println!("wasm-split: {} chunks for {} lazy functions", split.split_modules.len(), manifest.len());
    Ok(())
}
