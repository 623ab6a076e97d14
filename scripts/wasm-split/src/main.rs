//! Cuts the browser WASM (linked with `--emit-relocs`) at its lazy routes: a main module for
//! wasm-bindgen, one chunk per route plus chunks for code several routes share, the loader the
//! main module imports, and the manifest Leptos reads to preload the chunks of the page it
//! renders. Chunk file names carry a hash of the build, so a page still running an older main
//! module never loads a newer chunk (it gets a 404 instead of mismatched code), and browsers
//! never reuse a stale chunk from their cache.
//!
//! Usage: `agentkey-wasm-split <linked.wasm> <main-out.wasm> <pkg-dir> <output-name>`

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hasher},
    path::PathBuf,
};

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

    let mut hasher = DefaultHasher::new();
    hasher.write(&wasm);
    let build = format!("{:016x}", hasher.finish());
    let loader_path = pkg_dir.join(LOADER);
    let mut loader = std::fs::read_to_string(&loader_path)?;
    let mut renamed = BTreeMap::new();
    for path in &split.split_modules {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            bail!("chunk without a UTF-8 name: {}", path.display());
        };
        let hashed = format!("{stem}.{build}");
        let (old_ref, new_ref) = (format!("\"./{stem}.wasm\""), format!("\"./{hashed}.wasm\""));
        if !loader.contains(&old_ref) {
            bail!("the loader does not name {stem}.wasm");
        }
        loader = loader.replace(&old_ref, &new_ref);
        std::fs::rename(path, path.with_file_name(format!("{hashed}.wasm")))?;
        renamed.insert(stem.to_owned(), hashed);
    }
    std::fs::write(&loader_path, loader)?;

    let manifest: BTreeMap<String, Vec<String>> = split
        .prefetch_map
        .into_iter()
        .map(|(split, files)| {
            let files = files.into_iter().map(|f| renamed.get(&f).cloned().unwrap_or(f)).collect();
            (split, files)
        })
        .collect();
    std::fs::write(pkg_dir.join(MANIFEST), serde_json::to_string_pretty(&manifest)?)?;
    println!("wasm-split: {} chunks for {} lazy functions (build {build})", renamed.len(), manifest.len());
    Ok(())
}
