//! Cuts the browser WASM (linked with `--emit-relocs`) at its lazy routes, in two steps run by
//! `scripts/build-site.sh`:
//!
//! - `split <linked.wasm> <main-out.wasm> <pkg-dir> <output-name>`: writes a main module for
//!   wasm-bindgen, one chunk per route plus chunks for code several routes share, the loader
//!   the main module imports, and the manifest Leptos reads to preload the chunks of the page
//!   it renders.
//! - `stamp <pkg-dir> <output-name>`, once every module is final (after wasm-bindgen and
//!   wasm-opt): packs each page's module and the chunks it needs into one bundle file,
//!   `bundle_<n>.<build>.wasm` (one request per page instead of one per chunk), where `<build>`
//!   hashes the bytes of every final module and the loader, and rewrites the loader to take
//!   its modules from the bundles and the manifest to preload them. A page still running an
//!   older main module therefore never loads newer code (it gets a 404 instead of mismatched
//!   code), and a cached bundle is never stale.

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hasher},
    path::Path,
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
    let mut chunks: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in std::fs::read_dir(pkg_dir)? {
        let path = entry?.path();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        if let Some(stem) = file.strip_suffix(".wasm")
            && file != main
        {
            chunks.insert(stem.to_owned(), std::fs::read(&path)?);
        }
    }
    let mut hasher = DefaultHasher::new();
    hasher.write(loader.as_bytes());
    hasher.write(&std::fs::read(pkg_dir.join(&main)).wrap_err("reading the main module")?);
    for bytes in chunks.values() {
        hasher.write(bytes);
    }
    let build = format!("{:016x}", hasher.finish());

    // One file per page: its own module and every chunk it needs, fetched in one request
    // (a page needs up to ~90 chunks, and a request each made the cold load slow).
    let mut stamped = Manifest::new();
    let mut bundle_of = BTreeMap::new();
    let mut stems_of = BTreeMap::new();
    for (index, (split, files)) in manifest.into_iter().enumerate() {
        let bundle = format!("bundle_{index}.{build}");
        let mut head = Vec::new();
        let mut body = Vec::new();
        for file in &files {
            let bytes = chunks.get(file).ok_or_else(|| {
                eyre::eyre!(
                    "the manifest names {file}, which is not in {}",
                    pkg_dir.display()
                )
            })?;
            head.push((file.clone(), bytes.len()));
            body.extend_from_slice(bytes);
            if file.starts_with("split_") {
                bundle_of.insert(file.clone(), format!("./{bundle}.wasm"));
            }
        }
        if !files.iter().any(|f| f.starts_with("split_")) {
            // Only a page's own module fetches its bundle: without one, its chunks would wait.
            bail!("{split} has no module of its own; its bundle would never be fetched");
        }
        stems_of.insert(format!("./{bundle}.wasm"), files.clone());
        let head = serde_json::to_vec(&head)?;
        let mut out = u32::try_from(head.len())?.to_le_bytes().to_vec();
        out.extend_from_slice(&head);
        out.extend_from_slice(&body);
        std::fs::write(pkg_dir.join(format!("{bundle}.wasm")), out)?;
        stamped.insert(split, vec![bundle]);
    }

    // The loader fetches each module on its own; it now takes them from the bundles.
    for stem in chunks.keys() {
        let fetch = format!("fetch(new URL(\"./{stem}.wasm\", import.meta.url))");
        if !loader.contains(&fetch) {
            bail!("the loader does not fetch {stem}.wasm as expected (stamped twice?)");
        }
        loader = loader.replace(&fetch, &format!("__akPart(\"{stem}\")"));
        std::fs::remove_file(pkg_dir.join(format!("{stem}.wasm")))?;
    }
    let streaming = "WebAssembly.instantiateStreaming(src, imports)";
    if loader.matches(streaming).count() != chunks.len() {
        bail!("the loader does not instantiate each module as expected");
    }
    loader = loader.replace(streaming, "WebAssembly.instantiate(await src, imports)");
    loader.push_str(&format!(
        "const __akBundleOf = {};\nconst __akStemsOf = {};\n{BUNDLE_RUNTIME}",
        serde_json::to_string(&bundle_of)?,
        serde_json::to_string(&stems_of)?
    ));
    std::fs::write(&loader_path, loader)?;
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&stamped)?)?;
    println!(
        "wasm-split: {} modules in {} page bundles, build {build}",
        chunks.len(),
        stamped.len()
    );
    Ok(())
}

/// Appended to the loader: `__akPart(stem)` is the bytes of one module. Asking for a page's
/// own module fetches the page's bundle, which settles that module and every chunk in it;
/// chunks a page asks for first wait for it. A failed fetch rejects what waits for that
/// bundle's modules, so that the next navigation tries again (the loader forgets failed
/// loads). Shared chunks travel in every bundle that needs them: a later page's bundle may
/// bring a chunk already loaded again (one request per page costs some bytes on navigation).
const BUNDLE_RUNTIME: &str = r#"const __akParts = new Map();
const __akDone = new Set();
function __akPart(stem) {
    let part = __akParts.get(stem);
    if (part === undefined) {
        let settle;
        part = new Promise((resolve, reject) => { settle = { resolve, reject }; });
        part.settle = settle;
        part.catch(() => {});
        __akParts.set(stem, part);
    }
    const bundle = __akBundleOf[stem];
    if (bundle !== undefined) __akFetch(bundle);
    return part.then((bytes) => { __akParts.delete(stem); __akDone.add(stem); return bytes; });
}
function __akFetch(url) {
    fetch(new URL(url, import.meta.url))
        .then((res) => {
            if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
            return res.arrayBuffer();
        })
        .then((buf) => {
            const size = new DataView(buf).getUint32(0, true);
            const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, size)));
            let at = 4 + size;
            for (const [stem, len] of head) {
                const bytes = buf.slice(at, at + len);
                at += len;
                const part = __akParts.get(stem);
                // Whoever waits gets it (also a retry after a failed instantiation); bytes
                // nobody asked for are kept only for modules not loaded yet.
                if (part !== undefined && part.settle !== undefined) part.settle.resolve(bytes);
                else if (part === undefined && !__akDone.has(stem)) __akParts.set(stem, Promise.resolve(bytes));
            }
        })
        .catch((err) => {
            // Only what this bundle was to bring fails (its page's load is retried later).
            for (const stem of __akStemsOf[url] ?? []) {
                const part = __akParts.get(stem);
                if (part !== undefined && part.settle !== undefined) { part.settle.reject(err); __akParts.delete(stem); }
            }
        });
}
"#;
