//! pare's own PA rules: production-image practice that hadolint does not check. Each has a page
//! in docs/rules/PAxxxx.md.

use super::{
    finding, finding_msg, has_mount, parse_from, rules, run_shell, split_image, split_words,
    unquote,
};
use crate::parse::{Dockerfile, Instruction};
use crate::shell::Script;
use crate::{Context, Finding};

/// A stage: its FROM and its instructions (ONBUILD bodies excluded).
struct Stage<'a> {
    from: &'a Instruction,
    image: String,
    alias: Option<String>,
    body: Vec<&'a Instruction>,
}

/// Stages, with FROM images expanded from the global ARG defaults (`ARG BASE=python:3.12` /
/// `FROM ${BASE}`), like the builder does.
fn stages(df: &Dockerfile) -> Vec<Stage<'_>> {
    let mut args: Vec<(String, String)> = Vec::new();
    for ins in df.instructions.iter().take_while(|i| i.keyword != "FROM") {
        if ins.keyword == "ARG" {
            let (k, v) = ins.args.split_once('=').unwrap_or((&ins.args, ""));
            args.push((k.trim().to_string(), unquote(v.trim())));
        }
    }
    let lookup = |n: &str| {
        args.iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    let mut out: Vec<Stage<'_>> = Vec::new();
    for ins in &df.instructions {
        if ins.keyword == "FROM" {
            let f = parse_from(ins);
            out.push(Stage {
                from: ins,
                image: crate::parse::expand(&f.image, &lookup),
                alias: f.alias,
                body: Vec::new(),
            });
        } else if let Some(s) = out.last_mut() {
            s.body.push(ins);
        }
    }
    out
}

rules! {
    PA1001 Info "The final stage uses a full distro or SDK base image; a slim, alpine or distroless variant exists";
    PA1002 Warning "Build toolchain left in the final stage; build in an earlier stage and copy only the result";
    PA1003 Warning "Do not upgrade all packages in the image; pin a newer base image instead";
    PA1004 Warning "ADD of a remote URL without --checksum";
    PA1005 Error "A secret (key, certificate or credentials file) is copied into the image";
    PA1006 Warning "The final stage has no USER instruction and runs as root";
    PA1007 Info "Package install without a cache mount or cleanup in the same layer";
    PA1008 Info "No .dockerignore beside the Dockerfile: the whole directory is sent as build context" [config];
    PA1009 Warning "The whole build context is copied before the dependency install; copy the manifest files first";
}

pub(super) fn check(df: &Dockerfile, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let st = stages(df);
    let Some(last) = st.last() else { return };
    // The chain of stages the final image is built on (final first).
    let mut chain: Vec<&Stage<'_>> = vec![last];
    while let Some(parent) = chain.last().and_then(|s| {
        st.iter().find(|p| {
            p.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&s.image))
                && !std::ptr::eq(*p, *s)
        })
    }) {
        if chain.iter().any(|c| std::ptr::eq(*c, parent)) || chain.len() > st.len() {
            break;
        }
        chain.push(parent);
    }
    let base = chain.last().map(|s| s.image.as_str()).unwrap_or("");

    // PA1001: full distro / SDK base for the final image.
    if let Some(hint) = slimmer_variant(base) {
        let root = chain.last().map(|s| s.from.line).unwrap_or(last.from.line);
        out.push(finding_msg(
            &PA1001,
            root,
            format!("The final stage uses the full image `{base}`; consider {hint}"),
        ));
    }

    // PA1002: toolchain in the final image.
    for s in chain.iter().rev() {
        for ins in &s.body {
            if ins.keyword != "RUN" {
                continue;
            }
            let sh = run_shell(ins);
            let tools: Vec<String> = installed_packages(&sh.script)
                .into_iter()
                .filter(|p| is_toolchain(p))
                .collect();
            if tools.is_empty() {
                continue;
            }
            let removed = s.body.iter().filter(|i| i.keyword == "RUN").any(|i| {
                let sh = run_shell(i);
                sh.script.commands.iter().any(|c| {
                    (c.name == "apt-get"
                        && matches!(c.subcommand(), Some("purge" | "remove" | "autoremove")))
                        || (c.name == "apk" && c.subcommand() == Some("del"))
                        || ((c.name == "yum" || c.name == "dnf")
                            && matches!(c.subcommand(), Some("remove" | "erase" | "autoremove")))
                })
            });
            if !removed {
                out.push(finding_msg(&PA1002,
                    ins.line,
                    format!(
                        "Build toolchain ({}) left in the final stage; build in an earlier stage and COPY --from only the result",
                        tools.join(", ")
                    ),
                ));
            }
        }
    }

    // PA1006: no USER anywhere in the final image's chain.
    let has_user = chain
        .iter()
        .any(|s| s.body.iter().any(|i| i.keyword == "USER"));
    if !has_user && last.image != "scratch" {
        out.push(finding(&PA1006, last.from.line));
    }

    for s in &st {
        let mut context_copied: Option<usize> = None;
        for ins in &s.body {
            let all = std::iter::once(*ins).chain(ins.onbuild.as_deref());
            for i in all {
                match i.keyword.as_str() {
                    "RUN" => {
                        let sh = run_shell(i);
                        if upgrades_all(&sh.script) {
                            out.push(finding(&PA1003, i.line));
                        }
                        if let Some(what) = install_without_cache(i, &sh.script) {
                            out.push(finding_msg(
                                &PA1007,
                                i.line,
                                format!(
                                    "{what} without a cache mount or cleanup in the same layer"
                                ),
                            ));
                        }
                        if let (Some(copy_line), Some(cmd)) =
                            (context_copied, dependency_install(&sh.script))
                        {
                            out.push(finding_msg(&PA1009,
                                copy_line,
                                format!("The whole build context is copied before `{cmd}`: every code change re-runs it. COPY the manifest files first, install, then COPY the rest"),
                            ));
                            context_copied = None;
                        }
                    }
                    "ADD" | "COPY" => {
                        let args: Vec<String> = match &i.exec {
                            Some(a) => a.clone(),
                            None => split_words(&i.args).iter().map(|w| unquote(w)).collect(),
                        };
                        let srcs = if args.len() >= 2 {
                            &args[..args.len() - 1]
                        } else {
                            &[][..]
                        };
                        if i.keyword == "ADD"
                            && i.flag("checksum").is_none()
                            && srcs
                                .iter()
                                .any(|x| x.starts_with("http://") || x.starts_with("https://"))
                        {
                            out.push(finding(&PA1004, i.line));
                        }
                        if i.flag("from").is_none() && i.heredocs.is_empty() {
                            if let Some(sec) = srcs.iter().find(|x| is_secret(x)) {
                                out.push(finding_msg(&PA1005,
                                    i.line,
                                    format!("`{sec}` looks like a secret and would be stored in the image; use `RUN --mount=type=secret` instead"),
                                ));
                            }
                            if i.keyword == "COPY"
                                && srcs
                                    .iter()
                                    .any(|x| matches!(x.as_str(), "." | "./" | "./."))
                                && context_copied.is_none()
                            {
                                context_copied = Some(i.line);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // PA1008: no .dockerignore beside the Dockerfile.
    if let Some(path) = ctx.path {
        let first_ctx_copy = df.instructions.iter().find(|i| {
            matches!(i.keyword.as_str(), "COPY" | "ADD")
                && i.flag("from").is_none()
                && i.heredocs.is_empty()
        });
        if let Some(ins) = first_ctx_copy {
            let dir = path.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    p
                }
            });
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(dir) = dir {
                let plain = dir.join(".dockerignore");
                let specific = dir.join(format!("{name}.dockerignore"));
                if !plain.exists() && !specific.exists() {
                    out.push(finding(&PA1008, ins.line));
                }
            }
        }
    }
}

/// Suggestion for a full image that has a smaller variant, or `None`.
fn slimmer_variant(image: &str) -> Option<&'static str> {
    if image.is_empty() || image.contains('$') || image == "scratch" {
        return None;
    }
    let (_reg, name, tag, _digest) = split_image(image);
    let tag = tag.unwrap_or("latest").to_ascii_lowercase();
    let small = [
        "slim",
        "alpine",
        "distroless",
        "minimal",
        "micro",
        "busybox",
        "runtime",
        "jre",
        "nonroot",
        "static",
        "chiseled",
        "ubi-minimal",
    ];
    if small.iter().any(|s| tag.contains(s)) {
        return None;
    }
    let short = name.strip_prefix("library/").unwrap_or(name);
    Some(match short {
        "python" => "a `-slim` tag (or a distroless python image for the runtime)",
        "node" => "a `-slim` or `-alpine` tag (or gcr.io/distroless/nodejs)",
        "ruby" => "a `-slim` or `-alpine` tag",
        "golang" => "building in this image and running on gcr.io/distroless/static or scratch",
        "rust" => "building in this image and running on debian:*-slim or gcr.io/distroless/cc",
        "openjdk" | "eclipse-temurin" | "amazoncorretto" => {
            "a JRE tag (e.g. eclipse-temurin:*-jre) or gcr.io/distroless/java"
        }
        "maven" | "gradle" | "sbt" => {
            "building in this image and running on a JRE or distroless java image"
        }
        "php" => "a `-alpine` or `-fpm-alpine` tag",
        "perl" => "a `-slim` tag",
        "elixir" | "erlang" => "a `-slim` or `-alpine` tag",
        "debian" => "a `-slim` tag (e.g. debian:bookworm-slim)",
        "buildpack-deps" => "debian:*-slim plus only the packages you need",
        "dotnet/sdk" => "mcr.microsoft.com/dotnet/aspnet or dotnet/runtime for the final stage",
        "centos" | "fedora" | "rockylinux" | "almalinux" => {
            "a `-minimal` variant or a UBI minimal image"
        }
        _ => return None,
    })
}

const TOOLCHAIN: &[&str] = &[
    "gcc",
    "g++",
    "make",
    "cmake",
    "build-essential",
    "build-base",
    "clang",
    "llvm",
    "cargo",
    "rustc",
    "golang",
    "golang-go",
    "go",
    "maven",
    "gradle",
    "default-jdk",
    "autoconf",
    "automake",
    "libtool",
    "gfortran",
    "musl-dev",
    "alpine-sdk",
    "gcc-c++",
    "devtoolset",
    "nodejs-dev",
];

fn is_toolchain(p: &str) -> bool {
    let name = p.split(['=', ':']).next().unwrap_or(p);
    let name = name.split_once(">").map(|x| x.0).unwrap_or(name);
    TOOLCHAIN.contains(&name)
        || name.ends_with("-dev")
        || name.ends_with("-devel")
        || (name.starts_with("openjdk")
            && name.contains("jdk")
            && !name.contains("jre")
            && name.contains('-'))
        || name.starts_with("gcc-")
        || name.starts_with("g++-")
}

fn installed_packages(s: &Script) -> Vec<String> {
    let mut v = Vec::new();
    for c in &s.commands {
        let sub = c.subcommand();
        let installs = match c.name.as_str() {
            "apt-get" | "apt" | "yum" | "dnf" | "microdnf" | "zypper" => {
                matches!(sub, Some("install" | "in"))
            }
            "apk" => sub == Some("add"),
            _ => false,
        };
        if installs {
            v.extend(c.positional().skip(1).map(str::to_string));
        }
    }
    v
}

fn upgrades_all(s: &Script) -> bool {
    s.commands.iter().any(|c| {
        let sub = c.subcommand();
        match c.name.as_str() {
            "apt-get" | "apt" => matches!(sub, Some("upgrade" | "dist-upgrade" | "full-upgrade")),
            "apk" => sub == Some("upgrade"),
            "yum" | "dnf" | "microdnf" => {
                matches!(sub, Some("upgrade" | "update")) && c.positional().count() == 1
            }
            _ => false,
        }
    })
}

fn install_without_cache(ins: &Instruction, s: &Script) -> Option<&'static str> {
    let cache_mount = ins
        .flags
        .iter()
        .any(|f| f.name == "mount" && f.value.as_deref().is_some_and(|v| v.contains("type=cache")));
    if cache_mount {
        return None;
    }
    let rm = |p: &str| {
        s.find("rm")
            .any(|c| c.args.iter().any(|a| a.starts_with(p)))
    };
    let has = |name: &str, subs: &[&str]| {
        s.find(name)
            .any(|c| c.subcommand().is_some_and(|x| subs.contains(&x)))
    };
    if has("apt-get", &["install"]) && !rm("/var/lib/apt/lists") && !has("apt-get", &["clean"]) {
        return Some("apt-get install");
    }
    if s.find("apk")
        .any(|c| c.subcommand() == Some("add") && !c.has_flag("--no-cache"))
        && !rm("/var/cache/apk")
    {
        return Some("apk add");
    }
    for m in ["yum", "dnf"] {
        if has(m, &["install"]) && !has(m, &["clean"]) && !rm("/var/cache/") {
            return Some(if m == "yum" {
                "yum install"
            } else {
                "dnf install"
            });
        }
    }
    if has_mount(ins, &["cache"], &["/root/.cache"]) {
        return None;
    }
    None
}

/// A dependency install that should run before the sources are copied.
fn dependency_install(s: &Script) -> Option<String> {
    for c in &s.commands {
        let sub = c.subcommand().unwrap_or("");
        let hit = match c.name.as_str() {
            "npm" => matches!(sub, "ci" | "install" | "i") && c.positional().count() == 1,
            "yarn" => sub == "install" || (sub.is_empty() && c.args.is_empty()),
            "pnpm" => matches!(sub, "install" | "i"),
            "pip" | "pip3" => sub == "install" && c.has_any_flag(&["-r", "--requirement"]),
            "poetry" | "pipenv" | "uv" => matches!(sub, "install" | "sync"),
            "go" => sub == "mod" && c.positional().nth(1) == Some("download"),
            "bundle" => sub == "install" || sub.is_empty(),
            "cargo" => sub == "fetch",
            "composer" => sub == "install",
            "dotnet" => sub == "restore",
            "mvn" => c.args.iter().any(|a| a.starts_with("dependency:")),
            _ => false,
        };
        if hit {
            let words: Vec<&str> = std::iter::once(c.name.as_str())
                .chain(c.positional().take(if c.name == "go" { 2 } else { 1 }))
                .collect();
            return Some(words.join(" "));
        }
    }
    None
}

fn is_secret(src: &str) -> bool {
    let name = src
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(src)
        .to_ascii_lowercase();
    matches!(
        name.as_str(),
        ".env"
            | "id_rsa"
            | "id_dsa"
            | "id_ecdsa"
            | "id_ed25519"
            | "credentials"
            | "credentials.json"
            | ".npmrc"
            | ".pypirc"
            | ".netrc"
            | ".git-credentials"
            | ".htpasswd"
            | "secrets.yaml"
            | "secrets.yml"
            | "secrets.json"
            | "service-account.json"
    ) || (name.starts_with(".env.")
        && !name.ends_with(".example")
        && !name.ends_with(".sample")
        && !name.ends_with(".template"))
        || [".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".kdbx"]
            .iter()
            .any(|e| name.ends_with(e))
}
