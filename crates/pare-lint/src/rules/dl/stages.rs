//! Rules on FROM lines, stages and the file as a whole.

use super::{Stage, State};
use crate::config::registry_trusted;
use crate::parse::Instruction;
use crate::rules::{finding, parse_from, rules, split_image};

rules! {
    DL1000 Error "Dockerfile syntax error";
    DL1001 Ignore "Please refrain from using inline ignore pragmas  `# hadolint ignore=DLxxxx`.";
    DL3002 Warning "Last USER should not be root";
    DL3006 Warning "Always tag the version of an image explicitly";
    DL3009 Info "Delete the apt lists (/var/lib/apt/lists) after installing something";
    DL3007 Warning "Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag";
    DL3024 Error "FROM aliases (stage names) must be unique";
    DL3026 Error "Use only an allowed registry in the FROM image" [config];
    DL3029 Warning "Do not use --platform flag with FROM";
    DL3043 Error "`ONBUILD`, `FROM` or `MAINTAINER` triggered from within `ONBUILD` instruction.";
    DL3057 Ignore "`HEALTHCHECK` instruction missing.";
    DL3059 Info "Multiple consecutive `RUN` instructions. Consider consolidation.";
    DL3061 Error "Invalid instruction order. Dockerfile must begin with `FROM`, `ARG` or comment.";
    DL3063 Warning "Stage name should not be a reserved word";
    DL3065 Warning "Setting `FROM --platform` to predefined `$TARGETPLATFORM` in is redundant as this is the default behavior";
}

impl State<'_> {
    pub(super) fn begin_stage(&mut self, ins: &Instruction) {
        self.used_curl = false;
        self.used_wget = false;
        let f = parse_from(ins);
        let parent = self.find_alias(&f.image);
        let image = f.image.as_str();
        if let Some(a) = &f.alias {
            if self.find_alias(a).is_some() {
                self.out.push(finding(&DL3024, ins.line));
            }
            // `scratch` is reserved by the builder: a stage of that name can never be referenced.
            if a.eq_ignore_ascii_case("scratch") {
                self.out.push(finding(&DL3063, ins.line));
            }
        }
        if parent.is_none() && image != "scratch" && !image.contains('$') && !image.is_empty() {
            let (registry, _name, tag, digest) = split_image(image);
            if tag.is_none() && digest.is_none() {
                self.out.push(finding(&DL3006, ins.line));
            }
            if tag == Some("latest") && digest.is_none() {
                self.out.push(finding(&DL3007, ins.line));
            }
            if !self.cfg.trusted_registries.is_empty() {
                let reg = registry.unwrap_or("docker.io");
                if !registry_trusted(reg, &self.cfg.trusted_registries) {
                    self.out.push(finding(&DL3026, ins.line));
                }
            }
        }
        if let Some(p) = ins.flag_value("platform") {
            let p = p.trim();
            if p == "$TARGETPLATFORM" || p == "${TARGETPLATFORM}" {
                self.out.push(finding(&DL3065, ins.line));
            } else if !p.contains("BUILDPLATFORM") && !p.contains("TARGETPLATFORM") {
                self.out.push(finding(&DL3029, ins.line));
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

    pub(super) fn end_stage(&mut self) {
        let Some(s) = self.stages.last() else { return };
        if let Some(l) = s.root_user_line {
            self.out.push(finding(&DL3002, l));
        }
        self.missing_labels();
    }
}
