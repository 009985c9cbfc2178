//! Rules on single instructions: WORKDIR, USER, MAINTAINER, CMD/ENTRYPOINT, HEALTHCHECK,
//! EXPOSE, ENV, ARG and SHELL.

use super::State;
use crate::parse::Instruction;
use crate::rules::{finding, kv_pairs, rules, split_words, unquote};

rules! {
    DL3000 Error "Use absolute WORKDIR";
    DL3011 Error "Valid UNIX ports range from 0 to 65535";
    DL3012 Error "Multiple `HEALTHCHECK` instructions";
    DL3025 Warning "Use arguments JSON notation for CMD and ENTRYPOINT arguments";
    DL3044 Error "Do not refer to an environment variable within the same `ENV` statement where it is defined.";
    DL3064 Warning "Potentially sensitive data should not be used in the `ARG` or `ENV` commands";
    DL3066 Info "Non-numeric user-id may not be resolvable by host system";
    DL4000 Error "MAINTAINER is deprecated";
    DL4003 Warning "Multiple `CMD` instructions found. If you list more than one `CMD` then only the last `CMD` will take effect";
    DL4004 Error "Multiple `ENTRYPOINT` instructions found. If you list more than one `ENTRYPOINT` then only the last `ENTRYPOINT` will take effect";
}

impl State<'_> {
    pub(super) fn arg(&mut self, ins: &Instruction) {
        if sensitive(ins.arg_name()) {
            self.out.push(finding(&DL3064, ins.line));
        }
    }

    pub(super) fn instruction(&mut self, ins: &Instruction, in_onbuild: bool) {
        let line = ins.line;
        match ins.keyword.as_str() {
            "RUN" => self.run(ins),
            "WORKDIR" => {
                let d = unquote(ins.args.trim());
                if !is_absolute(&d) {
                    self.out.push(finding(&DL3000, line));
                }
                if !in_onbuild {
                    self.stage().workdir = true;
                }
            }
            "USER" => {
                let u = unquote(ins.args.trim());
                let uid = u.split(':').next().unwrap_or("");
                if !uid.chars().all(|c| c.is_ascii_digit()) {
                    self.out.push(finding(&DL3066, line));
                }
                if !in_onbuild {
                    let root =
                        u == "root" || u == "0" || u.starts_with("root:") || u.starts_with("0:");
                    self.stage().root_user_line = if root { Some(line) } else { None };
                }
            }
            "MAINTAINER" => self.out.push(finding(&DL4000, line)),
            "CMD" | "ENTRYPOINT" => {
                if ins.exec.is_none() {
                    self.out.push(finding(&DL3025, line));
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
                                &DL4003
                            } else {
                                &DL4004
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
                    self.out.push(finding(&DL3025, line));
                }
                if !in_onbuild {
                    let s = self.stage();
                    s.healthchecks += 1;
                    if s.healthchecks > 1 {
                        self.out.push(finding(&DL3012, line));
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
                                self.out.push(finding(&DL3011, line));
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
                    self.out.push(finding(&DL3044, line));
                }
                if pairs.iter().any(|(k, _)| sensitive(k)) {
                    self.out.push(finding(&DL3064, line));
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
                    let non_posix = crate::rules::non_posix_shell(&first);
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
}

pub(super) fn is_absolute(d: &str) -> bool {
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
