//! Cuts the browser WASM (linked with `--emit-relocs`) at its lazy routes, in two steps run by
//! `scripts/build-site.sh`:
//!
//! - `split <linked.wasm> <main-out.wasm> <pkg-dir> <output-name>`: writes a main module for
//!   wasm-bindgen, one chunk per route plus chunks for code several routes share, the loader
//!   the main module imports, and the manifest Leptos reads to preload the chunks of the page
//!   it renders.
//! - `stamp <pkg-dir> <output-name>`, once every module is final (after wasm-bindgen and
//!   wasm-opt): renames each chunk to `<name>.<build>.wasm`, where `<build>` hashes the bytes
//!   of every final module and the loader, and rewrites the loader and the manifest to match.
//!   A page still running an older main module therefore never loads a newer chunk (it gets a
//!   404 instead of mismatched code), and a cached chunk is never stale.

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hasher},
    path::{Path, PathBuf},
};

use eyre::{WrapErr, bail};

/// File names Leptos' `HydrationScripts` looks for in the pkg directory.
const LOADER: &str = "__wasm_split.______________________.js";
const MANIFEST: &str = "__wasm_split_manifest.json";
const USAGE: &str = "usage: agentkey-wasm-split split <linked.wasm> <main-out.wasm> <pkg-dir> <output-name>\n       \
                     agentkey-wasm-split stamp <pkg-dir> <output-name>";

fn main() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--version"] => println!("agentkey-wasm-split {}", env!("CARGO_PKG_VERSION")),
        ["split", input, main_out, pkg_dir, name] => {
            split(input, Path::new(main_out), Path::new(pkg_dir), name)?
        }
        ["stamp", pkg_dir, name] => stamp(Path::new(pkg_dir), name)?,
        _ => bail!("{USAGE}"),
    }
    Ok(())
}

type Manifest = BTreeMap<String, Vec<String>>;

fn split(input: &str, main_out: &Path, pkg_dir: &Path, name: &str) -> eyre::Result<()> {
    let wasm = std::fs::read(input).wrap_err_with(|| format!("reading {input}"))?;
    let link_name = format!("./{LOADER}");
    let main_module = format!("./{name}.js");
    let mut options = wasm_split_cli_support::Options::new(&wasm);
    options.output_dir = pkg_dir;
    options.main_out_path = main_out;
    options.link_name = &link_name;
    options.main_module = &main_module;
    let split = wasm_split_cli_support::transform(options)?;
    let manifest: Manifest = split.prefetch_map.into_iter().collect();
    std::fs::write(
        pkg_dir.join(MANIFEST),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    println!(
        "wasm-split: {} chunks for {} lazy functions",
        split.split_modules.len(),
        manifest.len()
    );
    Ok(())
}

fn stamp(pkg_dir: &Path, name: &str) -> eyre::Result<()> {
    let loader_path = pkg_dir.join(LOADER);
    let mut loader = std::fs::read_to_string(&loader_path).wrap_err("reading the loader")?;
    let manifest_path = pkg_dir.join(MANIFEST);
    let manifest: Manifest = serde_json::from_str(&std::fs::read_to_string(&manifest_path)?)?;

    // Every module in a fixed order: the main module, then the chunks by name.
    let main = format!("{name}.wasm");
    let mut chunks: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(pkg_dir)? {
        let path = entry?.path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        if file.ends_with(".wasm") && file != main {
            chunks.push(path);
        }
    }
    chunks.sort();
    let mut hasher = DefaultHasher::new();
    hasher.write(loader.as_bytes());
    hasher.write(&std::fs::read(pkg_dir.join(&main)).wrap_err("reading the main module")?);
    for chunk in &chunks {
        hasher.write(&std::fs::read(chunk)?);
    }
    let build = format!("{:016x}", hasher.finish());

    let mut renamed = BTreeMap::new();
    for path in &chunks {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            bail!("chunk without a UTF-8 name: {}", path.display());
        };
        let hashed = format!("{stem}.{build}");
        let (old_ref, new_ref) = (format!("\"./{stem}.wasm\""), format!("\"./{hashed}.wasm\""));
        if !loader.contains(&old_ref) {
            bail!("the loader does not name {stem}.wasm (stamped twice?)");
        }
        loader = loader.replace(&old_ref, &new_ref);
        std::fs::rename(path, path.with_file_name(format!("{hashed}.wasm")))?;
        renamed.insert(stem.to_owned(), hashed);
    }
    let mut stamped = Manifest::new();
    for (split, files) in manifest {
        let files = files
            .into_iter()
            .map(|f| {
                renamed.get(&f).cloned().ok_or_else(|| {
                    eyre::eyre!(
                        "the manifest names {f}, which is not in {}",
                        pkg_dir.display()
                    )
                })
            })
            .collect::<eyre::Result<Vec<_>>>()?;
        stamped.insert(split, files);
    }
    std::fs::write(&loader_path, loader)?;
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&stamped)?)?;
    println!(
        "wasm-split: {} chunks stamped with build {build}",
        renamed.len()
    );
    Ok(())
}
