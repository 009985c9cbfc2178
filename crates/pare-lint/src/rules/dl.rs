//! hadolint's DL rules, written from their documented meaning and checked against hadolint
//! 2.15.1's behaviour (see docs/lint-differences.md for where we deliberately differ).

use std::collections::HashSet;

use super::{
    finding, finding_msg, has_mount, kv_pairs, parse_from, run_shell, split_image, split_words,
    unquote,
};
use crate::config::registry_trusted;
use crate::parse::{Dockerfile, Instruction};
use crate::shell::{Command, Script};
use crate::{Config, Finding};

#[derive(Default)]
struct Stage {
    alias: Option<String>,
    from_line: usize,
    workdir: bool,
    healthchecks: usize,
    cmds: usize,
    entrypoints: usize,
    pipefail: bool,
    non_posix_shell: bool,
    root_user_line: Option<usize>,
    pip_no_cache_env: bool,
    labels: Vec<(String, String, usize)>,
    env_defined: HashSet<String>,
    archives: Vec<String>,
    /// RUN lines with `apt-get update` and no list cleanup (DL3009, decided at the end).
    apt_lists_lines: Vec<usize>,
    /// The FROM arguments, to compare with the last FROM.
    from_args: String,
}

struct State<'c> {
    cfg: &'c Config,
    out: Vec<Finding>,
    stages: Vec<Stage>,
    /// Last RUN: (flags, command count) for DL3059, `None` after any non-RUN, non-comment.
    last_run: Option<(Vec<crate::parse::Flag>, usize)>,
    used_curl: bool,
    used_wget: bool,
    has_healthcheck: bool,
}

pub(super) fn check(df: &Dockerfile, cfg: &Config, out: &mut Vec<Finding>) {
    let mut st = State {
        cfg,
        out: Vec::new(),
        stages: Vec::new(),
        last_run: None,
        used_curl: false,
        used_wget: false,
        has_healthcheck: false,
    };
    // DL1001: inline ignore pragmas.
    for c in &df.comments {
        if let Some((false, _)) = crate::parse_pragma(&c.text) {
            st.out.push(finding("DL1001", c.line));
        }
    }
    for ins in &df.instructions {
        if ins.keyword == "FROM" {
            st.end_stage();
            st.begin_stage(ins);
            st.last_run = None;
            continue;
        }
        if st.stages.is_empty() && ins.keyword != "ARG" {
            st.out.push(finding("DL3061", ins.line));
        }
        if st.stages.is_empty() {
            if ins.keyword == "ARG" {
                st.arg(ins);
            }
            continue;
        }
        if ins.keyword == "RUN" {
            let sh = run_shell(ins);
            // Like hadolint, commands whose name is an expansion (`$GOPATH/bin/x`) do not count.
            let count = sh
                .script
                .commands
                .iter()
                .filter(|c| !c.name.contains('$'))
                .count();
            if let Some((flags, prev)) = &st.last_run {
                if *flags == ins.flags && count <= 1 && *prev <= 1 {
                    st.out.push(finding("DL3059", ins.line));
                }
            }
            st.last_run = Some((ins.flags.clone(), count));
        } else {
            st.last_run = None;
        }
        st.instruction(ins, false);
        if let Some(inner) = ins.onbuild.as_deref() {
            if matches!(inner.keyword.as_str(), "FROM" | "ONBUILD" | "MAINTAINER") {
                st.out.push(finding("DL3043", ins.line));
            } else {
                st.instruction(inner, true);
            }
        }
    }
    st.end_stage();
    // DL3009 matters for the final image and for stages other stages build FROM (like hadolint:
    // a stage whose FROM line equals the last one counts as final).
    let bases: HashSet<String> = df
        .instructions
        .iter()
        .filter(|i| i.keyword == "FROM")
        .map(|i| parse_from(i).image.to_ascii_lowercase())
        .collect();
    let last_from = st
        .stages
        .last()
        .map(|s| s.from_args.clone())
        .unwrap_or_default();
    for s in &st.stages {
        let used = s
            .alias
            .as_ref()
            .is_some_and(|a| bases.contains(&a.to_ascii_lowercase()));
        if s.from_args == last_from || used {
            for &l in &s.apt_lists_lines {
                st.out.push(finding("DL3009", l));
            }
        }
    }
    if !st.has_healthcheck {
        if let Some(first) = df.instructions.iter().find(|i| i.keyword == "FROM") {
            st.out.push(finding("DL3057", first.line));
        }
    }
    out.append(&mut st.out);
}

impl State<'_> {
    fn stage(&mut self) -> &mut Stage {
        // Callers only use this after a FROM.
        let n = self.stages.len();
        &mut self.stages[n.saturating_sub(1)]
    }

    fn find_alias(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| {
            s.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(name))
        })
    }

    fn begin_stage(&mut self, ins: &Instruction) {
        self.used_curl = false;
        self.used_wget = false;
        let f = parse_from(ins);
        let parent = self.find_alias(&f.image);
        let image = f.image.as_str();
        if let Some(a) = &f.alias {
            if self.find_alias(a).is_some() {
                self.out.push(finding("DL3024", ins.line));
            }
            // `scratch` is reserved by the builder: a stage of that name can never be referenced.
            if a.eq_ignore_ascii_case("scratch") {
                self.out.push(finding("DL3063", ins.line));
            }
        }
        if parent.is_none() && image != "scratch" && !image.contains('$') && !image.is_empty() {
            let (registry, _name, tag, digest) = split_image(image);
            if tag.is_none() && digest.is_none() {
                self.out.push(finding("DL3006", ins.line));
            }
            if tag == Some("latest") && digest.is_none() {
                self.out.push(finding("DL3007", ins.line));
            }
            if !self.cfg.trusted_registries.is_empty() {
                let reg = registry.unwrap_or("docker.io");
                if !registry_trusted(reg, &self.cfg.trusted_registries) {
                    self.out.push(finding("DL3026", ins.line));
                }
            }
        }
        if let Some(p) = ins.flag_value("platform") {
            let p = p.trim();
            if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
                self.out.push(finding("DL3065", ins.line));
            } else if !p.contains("BUILDPLATFORM") && !p.contains("TARGETPLATFORM") {
                self.out.push(finding("DL3029", ins.line));
            }
        }
        let inherit = parent.map(|p| {
            let s = &self.stages[p];
            (
                s.workdir,
                s.pipefail,
                s.non_posix_shell,
                s.pip_no_cache_env,
                s.env_defined.clone(),
            )
        });
        let mut s = Stage {
            alias: f.alias,
            from_line: ins.line,
            from_args: ins.args.clone(),
            ..Default::default()
        };
        if let Some((w, pf, np, pip, env)) = inherit {
            s.workdir = w;
            s.pipefail = pf;
            s.non_posix_shell = np;
            s.pip_no_cache_env = pip;
            s.env_defined = env;
        }
        self.stages.push(s);
    }

    fn end_stage(&mut self) {
        let Some(s) = self.stages.last() else { return };
        if let Some(l) = s.root_user_line {
            self.out.push(finding("DL3002", l));
        }
        // Label schema.
        let schema = &self.cfg.label_schema;
        let from_line = s.from_line;
        let labels = s.labels.clone();
        if !schema.is_empty() || self.cfg.strict_labels {
            for key in schema.keys() {
                if !labels.iter().any(|(k, _, _)| k == key) {
                    self.out.push(finding_msg(
                        "DL3049",
                        from_line,
                        format!("Label `{key}` is missing."),
                    ));
                }
            }
        }
    }

    fn arg(&mut self, ins: &Instruction) {
        if sensitive(ins.arg_name()) {
            self.out.push(finding("DL3064", ins.line));
        }
    }

    fn instruction(&mut self, ins: &Instruction, in_onbuild: bool) {
        let line = ins.line;
        match ins.keyword.as_str() {
            "RUN" => self.run(ins),
            "WORKDIR" => {
                let d = unquote(ins.args.trim());
                if !is_absolute(&d) {
                    self.out.push(finding("DL3000", line));
                }
                if !in_onbuild {
                    self.stage().workdir = true;
                }
            }
            "USER" => {
                let u = unquote(ins.args.trim());
                let uid = u.split(':').next().unwrap_or("");
                if !uid.chars().all(|c| c.is_ascii_digit()) {
                    self.out.push(finding("DL3066", line));
                }
                if !in_onbuild {
                    let root =
                        u == "root" || u == "0" || u.starts_with("root:") || u.starts_with("0:");
                    self.stage().root_user_line = if root { Some(line) } else { None };
                }
            }
            "MAINTAINER" => self.out.push(finding("DL4000", line)),
            "CMD" | "ENTRYPOINT" => {
                if ins.exec.is_none() {
                    self.out.push(finding("DL3025", line));
                }
                if !in_onbuild {
                    let s = self.stage();
                    let n = if ins.keyword == "CMD" {
                        s.cmds += 1;
                        s.cmds
                    } else {
                        s.entrypoints += 1;
                        s.entrypoints
                    };
                    if n > 1 {
                        self.out.push(finding(
                            if ins.keyword == "CMD" {
                                "DL4003"
                            } else {
                                "DL4004"
                            },
                            line,
                        ));
                    }
                }
            }
            "HEALTHCHECK" => {
                self.has_healthcheck = true;
                let rest = ins.args.trim_start();
                if rest.get(..3).is_some_and(|k| k.eq_ignore_ascii_case("CMD"))
                    && crate::parse::parse_json_array(rest[3..].trim()).is_none()
                {
                    self.out.push(finding("DL3025", line));
                }
                if !in_onbuild {
                    let s = self.stage();
                    s.healthchecks += 1;
                    if s.healthchecks > 1 {
                        self.out.push(finding("DL3012", line));
                    }
                }
            }
            "EXPOSE" => {
                for w in split_words(&ins.args) {
                    let w = unquote(&w);
                    let port = w.split('/').next().unwrap_or("");
                    for p in port.split('-') {
                        if let Ok(n) = p.parse::<u64>() {
                            if n > 65535 {
                                self.out.push(finding("DL3011", line));
                            }
                        }
                    }
                }
            }
            "ENV" => {
                let pairs = kv_pairs(&ins.args);
                let mut here: Vec<&str> = Vec::new();
                let mut bad = false;
                for (k, v) in &pairs {
                    for name in referenced_vars(v) {
                        if here.contains(&name.as_str())
                            && !self.stage().env_defined.contains(&name)
                        {
                            bad = true;
                        }
                    }
                    here.push(k);
                }
                if bad {
                    self.out.push(finding("DL3044", line));
                }
                if pairs.iter().any(|(k, _)| sensitive(k)) {
                    self.out.push(finding("DL3064", line));
                }
                if !in_onbuild {
                    for (k, v) in &pairs {
                        if k == "PIP_NO_CACHE_DIR"
                            && !matches!(
                                v.to_ascii_lowercase().as_str(),
                                "0" | "false" | "no" | "off" | ""
                            )
                        {
                            self.stage().pip_no_cache_env = true;
                        }
                        self.stage().env_defined.insert(k.clone());
                    }
                }
            }
            "ARG" => {
                self.arg(ins);
                if !in_onbuild {
                    let name = ins.arg_name().to_string();
                    self.stage().env_defined.insert(name);
                }
            }
            "LABEL" => self.label(ins, in_onbuild),
            "SHELL" => {
                if let Some(argv) = &ins.exec {
                    let first = argv
                        .first()
                        .map(|s| s.to_ascii_lowercase())
                        .unwrap_or_default();
                    let non_posix = super::non_posix_shell(&first);
                    let pipefail = argv.windows(2).any(|w| {
                        w[0].starts_with('-')
                            && !w[0].starts_with("--")
                            && w[0].ends_with('o')
                            && w[1] == "pipefail"
                    }) || argv
                        .iter()
                        .any(|a| a.starts_with('-') && a.contains("pipefail"));
                    if !in_onbuild {
                        let s = self.stage();
                        s.non_posix_shell = non_posix;
                        s.pipefail = pipefail;
                    }
                }
            }
            "COPY" => self.copy(ins, in_onbuild),
            "ADD" => self.add(ins),
            _ => {}
        }
    }

    fn label(&mut self, ins: &Instruction, in_onbuild: bool) {
        let line = ins.line;
        let pairs = kv_pairs(&ins.args);
        for (k, _) in &pairs {
            if !valid_label_key(k) {
                self.out.push(finding("DL3048", line));
                break;
            }
        }
        let schema = self.cfg.label_schema.clone();
        if self.cfg.strict_labels && pairs.iter().any(|(k, _)| !schema.contains_key(k)) {
            self.out.push(finding("DL3050", line));
        }
        for (k, v) in &pairs {
            let Some(ty) = schema.get(k) else { continue };
            if v.is_empty() {
                self.out.push(finding_msg(
                    "DL3051",
                    line,
                    format!("label `{k}` is empty."),
                ));
                continue;
            }
            let (ok, code, what) = match ty.as_str() {
                "url" => (valid_url(v), "DL3052", "is not a valid URL."),
                "rfc3339" => (
                    valid_rfc3339(v),
                    "DL3053",
                    "is not a valid time format - must conform to RFC3339.",
                ),
                "spdx" => (valid_spdx(v), "DL3054", "is not a valid SPDX identifier."),
                "hash" => (valid_hash(v), "DL3055", "is not a valid git hash."),
                "semver" => (
                    valid_semver(v),
                    "DL3056",
                    "does not conform to semantic versioning.",
                ),
                "email" => (
                    valid_email(v),
                    "DL3058",
                    "is not a valid email format - must conform to RFC5322.",
                ),
                _ => (true, "", ""),
            };
            if !ok {
                self.out
                    .push(finding_msg(code, line, format!("Label `{k}` {what}")));
            }
        }
        if !in_onbuild {
            for (k, v) in pairs {
                self.stage().labels.push((k, v, line));
            }
        }
    }

    fn copy(&mut self, ins: &Instruction, in_onbuild: bool) {
        let line = ins.line;
        let args: Vec<String> = match &ins.exec {
            Some(a) => a.clone(),
            None => split_words(&ins.args).iter().map(|w| unquote(w)).collect(),
        };
        if ins.heredocs.is_empty() && args.len() > 2 {
            if let Some(last) = args.last() {
                if !last.ends_with('/') && !last.contains('$') {
                    self.out.push(finding("DL3021", line));
                }
            }
        }
        if let Some(from) = ins.flag_value("from") {
            // In ONBUILD, `--from` names a stage of the *child* build: not checkable here.
            if !in_onbuild {
                self.check_copy_from(from, line);
            }
            if args.len() >= 2
                && args[..args.len() - 1].iter().any(|s| s == "/")
                && args.last().is_some_and(|d| d == "/")
            {
                self.out.push(finding("DL3067", line));
            }
        }
        if let Some(dest) = args.last() {
            if args.len() >= 2 && !is_absolute(dest) && !in_onbuild && !self.workdir_set() {
                self.out.push(finding("DL3045", line));
            }
        }
        if !in_onbuild && ins.flag("from").is_none() {
            for src in &args[..args.len().saturating_sub(1)] {
                if is_archive(src) {
                    let base = src.rsplit('/').next().unwrap_or(src).to_string();
                    self.stage().archives.push(base);
                }
            }
        }
    }

    /// DL3023 (own stage) and DL3022 (unknown stage) for `COPY --from`.
    fn check_copy_from(&mut self, from: &str, line: usize) {
        let own = self.stages.last().and_then(|s| s.alias.clone());
        if own.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(from)) {
            self.out.push(finding("DL3023", line));
            return;
        }
        let n = self.stages.len();
        let known = self.stages[..n.saturating_sub(1)].iter().any(|s| {
            s.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(from))
        });
        // A stage index must point at this or an earlier stage.
        let numeric = from.parse::<usize>().is_ok_and(|i| i < n);
        if !known && !numeric && !from.contains(':') {
            self.out.push(finding("DL3022", line));
        }
    }

    fn workdir_set(&self) -> bool {
        self.stages.last().is_some_and(|s| s.workdir)
    }

    fn add(&mut self, ins: &Instruction) {
        let args: Vec<String> = match &ins.exec {
            Some(a) => a.clone(),
            None => split_words(&ins.args).iter().map(|w| unquote(w)).collect(),
        };
        if ins.heredocs.is_empty() && args.len() >= 2 {
            let srcs = &args[..args.len() - 1];
            if srcs.iter().any(|s| !is_url(s) && !is_archive(s)) {
                self.out.push(finding("DL3020", ins.line));
            }
        }
    }

    fn run(&mut self, ins: &Instruction) {
        let line = ins.line;
        let sh = run_shell(ins);
        let s = &sh.script;
        let add = |out: &mut Vec<Finding>, code: &str| out.push(finding(code, line));
        let out = &mut self.out;

        const DL3001: &[&str] = &[
            "ssh", "vim", "shutdown", "service", "ps", "free", "top", "kill", "mount", "nano",
        ];
        if s.commands.iter().any(|c| DL3001.contains(&c.name.as_str())) {
            add(out, "DL3001");
        }
        if s.any("cd") {
            add(out, "DL3003");
        }
        if s.any("sudo") {
            add(out, "DL3004");
        }
        if s.any("apt") {
            add(out, "DL3027");
        }
        // apt-get
        let apt_installs: Vec<&Command> = s
            .find("apt-get")
            .filter(|c| c.subcommand() == Some("install"))
            .collect();
        if apt_installs.iter().any(|c| {
            apt_packages(c).iter().any(|p| {
                !p.contains('=') && !p.contains('/') && !p.ends_with(".deb") && !p.starts_with('$')
            })
        }) {
            add(out, "DL3008");
        }
        if !removes(s, "/var/lib/apt/lists")
            && !has_mount(
                ins,
                &["cache", "tmpfs"],
                &["/var/lib/apt/lists", "/var/lib/apt"],
            )
            && s.commands.iter().any(|c| {
                (c.name == "apt-get" || c.name == "apt") && c.subcommand() == Some("update")
            })
        {
            if let Some(st) = self.stages.last_mut() {
                st.apt_lists_lines.push(line);
            }
        }
        if apt_installs
            .iter()
            .any(|c| !c.has_any_flag(&["-y", "--yes", "--assume-yes"]) && !quiet2(c))
        {
            add(out, "DL3014");
        }
        if apt_installs.iter().any(|c| {
            !c.has_flag("--no-install-recommends")
                && !c.args.iter().any(|a| {
                    a.contains("APT::Install-Recommends=false")
                        || a.contains("APT::Install-Recommends=0")
                })
        }) {
            add(out, "DL3015");
        }
        // pip
        let pips: Vec<Command> = pip_installs(s);
        if pips
            .iter()
            .any(|c| pip_packages(c).iter().any(|p| !pip_pinned(p)))
        {
            add(out, "DL3013");
        }
        if !self.stages.last().is_some_and(|st| st.pip_no_cache_env)
            && !has_mount(
                ins,
                &["cache", "tmpfs"],
                &["/root/.cache/pip", "/root/.cache", "~/.cache/pip"],
            )
            && pips.iter().filter(|c| c.name != "pipx").any(|c| {
                !c.has_flag("--no-cache-dir")
                    && !c
                        .args
                        .iter()
                        .any(|a| a == "--cache-dir" || a.starts_with("--cache-dir="))
            })
        {
            add(out, "DL3042");
        }
        // npm
        if s.find("npm").any(|c| {
            matches!(c.subcommand(), Some("install" | "i" | "add"))
                && npm_packages(c).iter().any(|p| !npm_pinned(p))
        }) {
            add(out, "DL3016");
        }
        // apk
        let apk_adds: Vec<&Command> = s
            .find("apk")
            .filter(|c| c.subcommand() == Some("add"))
            .collect();
        if apk_adds.iter().any(|c| {
            apk_packages(c)
                .iter()
                .any(|p| !p.contains('=') && !p.ends_with(".apk"))
        }) {
            add(out, "DL3018");
        }
        if apk_adds.iter().any(|c| !c.has_flag("--no-cache"))
            && !has_mount(ins, &["cache"], &["/var/cache/apk", "/etc/apk/cache"])
        {
            add(out, "DL3019");
        }
        // gem
        if s.find("gem").any(|c| {
            c.subcommand() == Some("install")
                // Like hadolint: `-v X`, `--version X` or `--version=X` (not `-v=X`).
                && !c.args.iter().any(|a| a == "-v" || a == "--version" || a.starts_with("--version="))
                && c.positional().skip(1).any(|p| !p.contains(':'))
        }) {
            add(out, "DL3028");
        }
        // yum / dnf / microdnf
        let yum: Vec<&Command> = s.find("yum").collect();
        let yum_installs: Vec<&&Command> = yum
            .iter()
            .filter(|c| c.subcommand() == Some("install"))
            .collect();
        if yum_installs
            .iter()
            .any(|c| !c.has_any_flag(&["-y", "--assumeyes"]))
        {
            add(out, "DL3030");
        }
        if !yum_installs.is_empty()
            && !s
                .find("yum")
                .any(|c| c.positional().collect::<Vec<_>>() == ["clean", "all"])
            && !removes(s, "/var/cache/yum")
            && !has_mount(ins, &["cache"], &["/var/cache/yum"])
        {
            add(out, "DL3032");
        }
        if yum_installs
            .iter()
            .any(|c| rpm_packages(c).iter().any(|p| !rpm_pinned(p)))
        {
            add(out, "DL3033");
        }
        let dnf: Vec<&Command> = s
            .commands
            .iter()
            .filter(|c| c.name == "dnf" || c.name == "microdnf")
            .collect();
        let dnf_installs: Vec<&&Command> = dnf
            .iter()
            .filter(|c| c.subcommand() == Some("install"))
            .collect();
        if dnf_installs
            .iter()
            .any(|c| !c.has_any_flag(&["-y", "--assumeyes"]))
        {
            add(out, "DL3038");
        }
        if !dnf_installs.is_empty()
            && !dnf
                .iter()
                .any(|c| c.positional().collect::<Vec<_>>() == ["clean", "all"])
            && !removes(s, "/var/cache/dnf")
            && !removes(s, "/var/cache/yum")
            && !has_mount(ins, &["cache"], &["/var/cache/dnf"])
        {
            add(out, "DL3040");
        }
        if dnf_installs
            .iter()
            .any(|c| rpm_packages(c).iter().any(|p| !rpm_pinned(p)))
        {
            add(out, "DL3041");
        }
        // zypper
        let zy: Vec<&Command> = s.find("zypper").collect();
        let zy_installs: Vec<&&Command> = zy
            .iter()
            .filter(|c| matches!(c.subcommand(), Some("install" | "in")))
            .collect();
        if zy.iter().any(|c| {
            matches!(
                c.subcommand(),
                Some("install" | "in" | "remove" | "rm" | "source-install" | "si" | "patch")
            ) && !c.has_any_flag(&["-n", "--non-interactive", "-y", "--no-confirm"])
        }) {
            add(out, "DL3034");
        }
        if zy
            .iter()
            .any(|c| matches!(c.subcommand(), Some("dist-upgrade" | "dup")))
        {
            add(out, "DL3035");
        }
        if !zy_installs.is_empty()
            && !zy
                .iter()
                .any(|c| matches!(c.subcommand(), Some("clean" | "cc")))
        {
            add(out, "DL3036");
        }
        if zy_installs.iter().any(|c| {
            c.positional().skip(1).any(|p| {
                !p.contains('=') && !p.contains('>') && !p.contains('<') && !p.ends_with(".rpm")
            })
        }) {
            add(out, "DL3037");
        }
        // useradd
        if s.find("useradd").any(|c| {
            !c.has_any_flag(&["-l", "--no-log-init"])
                && uid_arg(c)
                    .is_some_and(|u| u.len() > 5 && u.chars().all(|ch| ch.is_ascii_digit()))
        }) {
            add(out, "DL3046");
        }
        // wget / curl
        let wget = s.any("wget");
        let curl = s.any("curl");
        if s.find("wget").any(|c| {
            !c.has_any_flag(&[
                "--progress",
                "-q",
                "--quiet",
                "-nv",
                "--no-verbose",
                "-o",
                "--output-file",
                "-a",
                "--append-output",
            ]) && !c.args.iter().any(|a| a == "-nv")
        }) {
            add(out, "DL3047");
        }
        // yarn
        let yarn_install = s
            .find("yarn")
            .any(|c| c.args.iter().any(|a| a == "install"));
        let yarn_clean = s.find("yarn").any(|c| {
            let p: Vec<&str> = c.args.iter().map(String::as_str).collect();
            p.windows(2).any(|w| w == ["cache", "clean"])
        });
        if yarn_install && !yarn_clean {
            add(out, "DL3060");
        }
        // go install
        if s.find("go").any(|c| {
            matches!(c.subcommand(), Some("install" | "get"))
                && c.positional().skip(1).any(|p| {
                    let local = p.starts_with('.') || p.starts_with('/') || p.starts_with('$');
                    !local && (!p.contains('@') || p.ends_with("@latest"))
                })
        }) {
            add(out, "DL3062");
        }
        // ln -s … /bin/sh
        if s.find("ln").any(|c| c.args.iter().any(|a| a == "/bin/sh")) {
            add(out, "DL4005");
        }
        // DL4006
        let (pipefail, non_posix) = self
            .stages
            .last()
            .map(|st| (st.pipefail, st.non_posix_shell))
            .unwrap_or((false, false));
        // Like hadolint, `set -o pipefail` inside the RUN does not count: /bin/sh may not have it.
        if s.has_pipe && !pipefail && !non_posix {
            add(out, "DL4006");
        }
        // DL4001: both wget and curl in this file (this RUN uses one, and the other was seen).
        if (wget && (curl || self.used_curl)) || (curl && self.used_wget) {
            add(out, "DL4001");
        }
        self.used_wget |= wget;
        self.used_curl |= curl;
        // DL3010: extracting an archive that was COPY'd.
        if let Some(st) = self.stages.last() {
            if !st.archives.is_empty()
                && s.find("tar").any(|c| {
                    c.args.iter().any(|a| {
                        (a.starts_with('-') && !a.starts_with("--") && a.contains('x'))
                            || a == "--extract"
                            || (!a.starts_with('-') && a.starts_with('x') && a.len() <= 6)
                    }) && c
                        .args
                        .iter()
                        .any(|a| st.archives.iter().any(|b| a.ends_with(b.as_str())))
                })
            {
                self.out.push(finding("DL3010", line));
            }
        }
    }
}

fn is_absolute(d: &str) -> bool {
    let d = d.trim();
    d.starts_with('/')
        || d.starts_with('$')
        || (d.len() >= 2 && d.as_bytes()[0].is_ascii_alphabetic() && d.as_bytes()[1] == b':')
}

fn referenced_vars(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            let braced = j < b.len() && b[j] == b'{';
            if braced {
                j += 1;
            }
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            // `${A:-x}` / `${A:+x}` are not reported (hadolint only sees `$A` and `${A}`).
            let plain = !braced || b.get(j) == Some(&b'}');
            if j > start && plain {
                out.push(v[start..j].to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

const SENSITIVE_NAMES: &[&str] = &[
    "ACCESS_TOKEN",
    "APPLICATION_KEY",
    "APP_SECRET",
    "AUTH_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "CF_PASSWORD",
    "CF_USERNAME",
    "CIRCLE_TOKEN",
    "CI_DEPLOY_PASSWORD",
    "CI_DEPLOY_USER",
    "DOCKERHUB_PASSWORD",
    "DOCKER_EMAIL",
    "DOCKER_PASSWORD",
    "DOCKER_USERNAME",
    "FACEBOOK_ACCESS_TOKEN",
    "FACEBOOK_APP_ID",
    "FIREBASE_TOKEN",
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "HEROKU_API_KEY",
    "NPM_AUTH_TOKEN",
    "NPM_TOKEN",
    "OPENAI_API_KEY",
    "OS_PASSWORD",
    "OS_USERNAME",
    "POSTGRES_PASSWORD",
    "SLACK_TOKEN",
    "STRIPE_API_KEY",
    "VAULT_TOKEN",
];

/// ARG/ENV names that look like secrets (DL3064).
fn sensitive(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let lower = name.to_ascii_lowercase();
    SENSITIVE_NAMES.contains(&upper.as_str())
        || [
            "api_key",
            "client_key",
            "password",
            "private",
            "secret",
            "token",
            "username",
        ]
        .iter()
        .any(|s| lower.contains(s))
}

fn valid_label_key(k: &str) -> bool {
    if k.is_empty() || k.contains('$') {
        return k.contains('$');
    }
    let reserved = ["com.docker.", "io.docker.", "org.dockerproject."];
    if reserved.iter().any(|r| k.starts_with(r)) {
        return false;
    }
    // Docker's convention, as hadolint checks it: lower-case alphanumerics, `.`, `-` (and `_`),
    // starting with a letter and ending with an alphanumeric.
    let b = k.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b[0].is_ascii_lowercase()
        && alnum(b[b.len() - 1])
        && b.iter()
            .all(|&c| alnum(c) || c == b'.' || c == b'-' || c == b'_')
        && !k.contains("..")
        && !k.contains("--")
}

fn valid_url(v: &str) -> bool {
    match v.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        }
        None => false,
    }
}

fn valid_rfc3339(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let d = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    let date = (0..4).all(d) && b[4] == b'-' && d(5) && d(6) && b[7] == b'-' && d(8) && d(9);
    let t = matches!(b[10], b'T' | b't' | b' ');
    let time = d(11) && d(12) && b[13] == b':' && d(14) && d(15) && b[16] == b':' && d(17) && d(18);
    let tz = v.ends_with('Z') || v.ends_with('z') || {
        let tail = &b[b.len() - 6..];
        (tail[0] == b'+' || tail[0] == b'-') && tail[3] == b':'
    };
    date && t && time && tz
}

fn valid_spdx(v: &str) -> bool {
    const IDS: &[&str] = &[
        "MIT",
        "Apache-2.0",
        "GPL-2.0",
        "GPL-2.0-only",
        "GPL-2.0-or-later",
        "GPL-3.0",
        "GPL-3.0-only",
        "GPL-3.0-or-later",
        "LGPL-2.1",
        "LGPL-2.1-only",
        "LGPL-2.1-or-later",
        "LGPL-3.0",
        "LGPL-3.0-only",
        "LGPL-3.0-or-later",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "MPL-2.0",
        "ISC",
        "AGPL-3.0",
        "AGPL-3.0-only",
        "AGPL-3.0-or-later",
        "Unlicense",
        "CC0-1.0",
        "EPL-1.0",
        "EPL-2.0",
        "Zlib",
        "BSL-1.0",
        "Artistic-2.0",
        "CDDL-1.0",
        "WTFPL",
        "0BSD",
        "Python-2.0",
        "PostgreSQL",
        "OpenSSL",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "EUPL-1.2",
        "MS-PL",
        "MIT-0",
        "NCSA",
        "Proprietary",
    ];
    v.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| !t.is_empty() && !matches!(*t, "AND" | "OR" | "WITH"))
        .all(|t| {
            IDS.iter()
                .any(|i| i.eq_ignore_ascii_case(t.trim_end_matches('+')))
                || t.starts_with("LicenseRef-")
        })
}

fn valid_hash(v: &str) -> bool {
    (v.len() == 7 || v.len() == 40) && v.chars().all(|c| c.is_ascii_hexdigit())
}

fn valid_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn valid_email(v: &str) -> bool {
    match v.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !v.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn is_url(s: &str) -> bool {
    s.contains("://")
}

pub(super) fn is_archive(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    [
        ".tar",
        ".tar.gz",
        ".tgz",
        ".tar.bz2",
        ".tbz",
        ".tbz2",
        ".tb2",
        ".tar.xz",
        ".txz",
        ".tar.zst",
        ".tzst",
        ".tar.lz",
        ".tlz",
        ".gz",
        ".bz2",
        ".xz",
        ".zst",
        ".lz",
        ".lzma",
        ".tar.lzma",
        ".z",
        ".tz",
    ]
    .iter()
    .any(|e| l.ends_with(e))
}

/// Does the script delete something under `path` (`rm -rf /var/lib/apt/lists/*`)?
fn removes(s: &Script, path: &str) -> bool {
    s.find("rm")
        .any(|c| c.args.iter().any(|a| a.starts_with(path)))
}

fn quiet2(c: &Command) -> bool {
    c.args.iter().any(|a| {
        a == "-qq"
            || a == "-q=2"
            || a == "--quiet=2"
            || (a.starts_with('-') && !a.starts_with("--") && a.matches('q').count() >= 2)
    })
}

/// Positional args after `install`, skipping values of options that take one.
fn args_after_sub<'a>(c: &'a Command, sub: &[&str], takes_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut seen_sub = false;
    let mut skip = false;
    for a in &c.args {
        if skip {
            skip = false;
            continue;
        }
        if a.starts_with('-') {
            if takes_value.contains(&a.as_str()) {
                skip = true;
            }
            continue;
        }
        if !seen_sub {
            if sub.contains(&a.as_str()) {
                seen_sub = true;
            }
            continue;
        }
        out.push(a.as_str());
    }
    out
}

fn apt_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["install"],
        &["-o", "-t", "--target-release", "-c", "--config-file"],
    )
}

fn apk_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["add"],
        &[
            "-t",
            "--virtual",
            "-X",
            "--repository",
            "--arch",
            "--root",
            "-p",
            "--keys-dir",
        ],
    )
}

fn rpm_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["install"],
        &[
            "--enablerepo",
            "--disablerepo",
            "--setopt",
            "--installroot",
            "--releasever",
            "-c",
            "--config",
        ],
    )
}

fn rpm_pinned(p: &str) -> bool {
    p.ends_with(".rpm") || p.contains("://") || {
        let b = p.as_bytes();
        b.windows(2).any(|w| w[0] == b'-' && w[1].is_ascii_digit())
    }
}

fn npm_packages(c: &Command) -> Vec<&str> {
    args_after_sub(
        c,
        &["install", "i", "add"],
        &["--prefix", "--registry", "--cache", "-C", "--tag", "--only"],
    )
}

fn npm_pinned(p: &str) -> bool {
    if p.contains("://") {
        // git/http URLs are pinned by a `#commit-ish`; tarball URLs by their name.
        return p.contains('#') || p.ends_with(".tgz") || p.ends_with(".tar.gz");
    }
    let body = p.strip_prefix('@').unwrap_or(p);
    body.contains('@')
        || p.starts_with('.')
        || p.starts_with('/')
        || p.starts_with('~')
        || p.starts_with("file:")
        || p.ends_with(".tgz")
        || p.ends_with(".tar.gz")
        || p.contains('#')
        || (p.contains('/') && !p.starts_with('@'))
}

fn pip_installs(s: &Script) -> Vec<Command> {
    let mut out = Vec::new();
    for c in &s.commands {
        let name = c.name.rsplit('/').next().unwrap_or(&c.name);
        let is_pip = name == "pipx"
            || (name.starts_with("pip")
                && name[3..].chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
        if is_pip {
            if c.subcommand() == Some("install") {
                out.push(c.clone());
            }
            continue;
        }
        let is_python = name.starts_with("python")
            && name[6..].chars().all(|ch| ch.is_ascii_digit() || ch == '.');
        if is_python {
            if let Some(pos) = c
                .args
                .windows(2)
                .position(|w| w[0] == "-m" && (w[1] == "pip" || w[1] == "pip3"))
            {
                let rest = c.args[pos + 2..].to_vec();
                let sub = Command {
                    name: "pip".into(),
                    args: rest,
                    piped: c.piped,
                };
                if sub.subcommand() == Some("install") {
                    out.push(sub);
                }
            }
        }
    }
    out
}

fn pip_packages(c: &Command) -> Vec<&str> {
    let mut v = args_after_sub(
        c,
        &["install"],
        &[
            "-r",
            "--requirement",
            "-c",
            "--constraint",
            "-e",
            "--editable",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "-t",
            "--target",
            "--prefix",
            "--root",
            "--trusted-host",
            "--platform",
            "--python-version",
            "--implementation",
            "--abi",
            "--upgrade-strategy",
            "--progress-bar",
            "--cache-dir",
            "--src",
            "--no-binary",
            "--only-binary",
            "--log",
            "--proxy",
            "--retries",
            "--timeout",
            "--exists-action",
            "--global-option",
            "--install-option",
            "--config-settings",
            "-C",
        ],
    );
    v.retain(|p| !p.is_empty());
    v
}

fn pip_pinned(p: &str) -> bool {
    ["==", ">=", "<=", "~=", "!=", "===", "<", ">", "@"]
        .iter()
        .any(|op| p.contains(op))
        || p.starts_with('.')
        || p.starts_with('/')
        || p.starts_with('$')
        || p.ends_with(".whl")
        || p.ends_with(".tar.gz")
        || p.ends_with(".zip")
}

fn uid_arg(c: &Command) -> Option<&str> {
    let mut it = c.args.iter();
    while let Some(a) = it.next() {
        if a == "-u" || a == "--uid" {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix("--uid=") {
            return Some(v);
        }
        if let Some(v) = a.strip_prefix("-u") {
            if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
                return Some(v);
            }
        }
    }
    None
}
