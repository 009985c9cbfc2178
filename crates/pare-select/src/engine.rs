//! The worklist that grows the selection to a fixed point.
//!
//! The module graph is one-way: `engine` → `rules`, `dpkg` → `keep`. The engine owns the
//! [`KeepSet`] and its own ELF worklist, and passes each rule only what it reads.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use globset::Glob;

use pare_image::ImagePath;

use crate::elf::{self, ElfInfo, LibResolver};
use crate::keep::KeepSet;
use crate::root::{self, Rootfs};
use crate::{Reason, SelectError, SelectInputs, Selection, dpkg, rules};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// An ELF object waiting for its dependencies to be resolved.
struct ElfItem {
    canonical: String,
    /// The path it was loaded as (its `$ORIGIN` is this path's directory).
    loaded_as: String,
    /// RPATH entries inherited from the objects that loaded it.
    inherited_rpath: Vec<String>,
}

/// The engine's own state around the kept set: the ELF worklist and what triggers the
/// global rules. The rules see only the [`KeepSet`] and the inputs they name.
struct Engine {
    set: KeepSet,
    resolver: LibResolver,
    queue: VecDeque<ElfItem>,
    elf_cache: HashMap<String, Option<ElfInfo>>,
    elf_done: HashSet<String>,
    /// Kept ELF objects that trigger rules: libc, TLS libraries.
    libc: Option<String>,
    tls: Vec<String>,
    sites: rules::Sites,
}

impl Engine {
    fn elf_info(&mut self, canonical: &str) -> Option<ElfInfo> {
        if let Some(c) = self.elf_cache.get(canonical) {
            return c.clone();
        }
        let info = match elf::read(self.set.root(), canonical) {
            Ok(i) => i,
            Err(e) => {
                self.set.warn(format!("{canonical}: unreadable ELF: {e}"));
                None
            }
        };
        self.elf_cache.insert(canonical.to_string(), info.clone());
        info
    }

    fn process_elf(&mut self, item: ElfItem) {
        // Once per object: the first load path (with its inherited RPATH) wins, like ld.so
        // which loads a soname once.
        if !self.elf_done.insert(item.canonical.clone()) {
            return;
        }
        let Some(info) = self.elf_info(&item.canonical) else {
            return;
        };
        let name = root::file_name(&item.canonical);
        if name.starts_with("libc.so")
            || name.starts_with("libc.musl")
            || name.starts_with("ld-musl")
        {
            self.libc.get_or_insert(item.canonical.clone());
        }
        if rules::is_tls_library(name) || info.go_tls {
            self.tls.push(item.canonical.clone());
        }
        if let Some(interp) = &info.interp {
            self.set.keep(
                interp,
                Reason::Interpreter {
                    by: ImagePath::clamped(&item.canonical),
                },
            );
        }
        let origin = root::parent(&item.loaded_as).unwrap_or("/").to_string();
        let expand = |list: &[String]| -> Vec<String> {
            list.iter()
                .flat_map(|e| elf::expand(e, &origin, info.is_64, info.machine))
                .collect()
        };
        let runpath = expand(&info.runpath);
        let mut rpath = expand(&info.rpath);
        rpath.extend(item.inherited_rpath.iter().cloned());
        for soname in &info.needed {
            match self.resolver.find(
                self.set.root(),
                soname,
                (info.is_64, info.machine),
                &rpath,
                &runpath,
            ) {
                Some(found) => {
                    let reason = Reason::Needed {
                        by: ImagePath::clamped(&item.canonical),
                        soname: soname.clone(),
                        via: found.via.to_string(),
                    };
                    let canonical = found.resolution.path.clone();
                    let new = !self.set.contains(&canonical);
                    self.set.keep(&found.path, reason);
                    if new && self.set.contains(&canonical) {
                        self.queue.push_back(ElfItem {
                            canonical,
                            loaded_as: found.path,
                            inherited_rpath: if runpath.is_empty() {
                                rpath.clone()
                            } else {
                                Vec::new()
                            },
                        });
                    }
                }
                None => self.set.warn(format!(
                    "{}: DT_NEEDED {soname} not found in the image",
                    item.canonical
                )),
            }
        }
    }

    /// Processes newly kept files until nothing new comes in.
    fn drain(&mut self) {
        loop {
            if let Some(item) = self.queue.pop_front() {
                self.process_elf(item);
                continue;
            }
            let Some(file) = self.set.next_pending() else {
                break;
            };
            // Scripts, Python and Node metadata (C extensions and .node addons included).
            rules::per_file(&mut self.set, &mut self.sites, &file);
            if elf::ident(self.set.root(), &file).is_some() {
                // ELF objects reached by DT_NEEDED are queued with their load path already;
                // anything else (executables, dlopened modules) is its own origin.
                self.queue.push_back(ElfItem {
                    canonical: file.clone(),
                    loaded_as: file,
                    inherited_rpath: Vec::new(),
                });
            }
        }
    }
}

/// Computes the selection. See the crate docs.
pub fn select(rootfs: &Path, inputs: &SelectInputs) -> Result<Selection, SelectError> {
    let root = Rootfs::new(rootfs)?;
    let ld_library_path: Vec<String> = inputs
        .facts
        .env_var("LD_LIBRARY_PATH")
        .map(|v| {
            v.split(':')
                .filter(|s| s.starts_with('/'))
                .map(root::normalize)
                .collect()
        })
        .unwrap_or_default();
    let resolver = LibResolver::load(&root, ld_library_path);
    let path_dirs = inputs
        .facts
        .env_var("PATH")
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .filter(|s| s.starts_with('/'))
        .map(root::normalize)
        .collect();
    let mut set = KeepSet::new(
        root,
        path_dirs,
        inputs.facts.workdir.clone(),
        &inputs.excludes,
        &inputs.preserve_paths,
    )?;
    for w in &resolver.warnings {
        set.warn(w.clone());
    }
    // Validate include globs up front so a typo is an error, not a silent no-op.
    for p in &inputs.include_paths {
        Glob::new(p).map_err(|source| SelectError::Glob {
            flag: "--include-path",
            pattern: p.clone(),
            source,
        })?;
    }

    // 1. Traced paths.
    for (path, rec) in &inputs.traced {
        if !rec.found {
            continue;
        }
        let reason = Reason::Traced {
            processes: rec.processes.iter().cloned().collect(),
            syscalls: rec.syscalls.iter().cloned().collect(),
            accesses: rec.kinds.iter().copied().collect(),
        };
        let created = rec.kinds.contains(&pare_trace::AccessKind::Create);
        if set.keep(path, reason).is_none() && created {
            // The app created it at run time (nginx's /var/lib/nginx/body): that only works
            // again when the nearest existing ancestor directory is in the slim image too.
            let mut cur = root::normalize(path);
            while let Some(parent) = root::parent(&cur).map(str::to_string) {
                if parent == "/"
                    || set
                        .keep(
                            &parent,
                            Reason::Parent {
                                of: ImagePath::clamped(path),
                            },
                        )
                        .is_some()
                {
                    break;
                }
                cur = parent;
            }
        }
    }
    // 2. Image config and baseline files.
    rules::image_config(&mut set, &inputs.facts);
    // 3. Flags.
    for g in &inputs.include_paths {
        rules::include_glob(&mut set, g, Reason::IncludePath { glob: g.clone() });
    }
    for g in &inputs.preserve_paths {
        rules::include_glob(&mut set, g, Reason::PreservePath { glob: g.clone() });
    }
    for b in &inputs.include_bins {
        if set
            .keep(b, Reason::IncludeBin { path: b.clone() })
            .is_none()
        {
            set.warn(format!("--include-bin {b}: not in the image"));
        }
    }
    for name in &inputs.include_exes {
        match set.which(name) {
            Some(p) => {
                set.keep(
                    &p,
                    Reason::IncludeExe {
                        name: name.clone(),
                        path: p.clone(),
                    },
                );
            }
            None => set.warn(format!("--include-exe {name}: not found in PATH")),
        }
    }
    if inputs.include_shell && set.keep("/bin/sh", Reason::IncludeShell).is_none() {
        set.warn("--include-shell: the image has no /bin/sh".into());
    }
    // 4. Closure to a fixed point: per-file rules inside drain, global rules once triggered.
    let mut engine = Engine {
        set,
        resolver,
        queue: VecDeque::new(),
        elf_cache: HashMap::new(),
        elf_done: HashSet::new(),
        libc: None,
        tls: Vec::new(),
        sites: rules::Sites::default(),
    };
    let mut done = rules::GlobalDone::default();
    loop {
        engine.drain();
        let triggers = rules::Triggers {
            libc: engine.libc.as_deref(),
            tls: &engine.tls,
            resolver: &engine.resolver,
        };
        if !rules::global(&mut engine.set, &triggers, &mut done) {
            break;
        }
    }
    let mut set = engine.set;
    // 5. dpkg database of the owners of what is kept.
    dpkg::trim(&mut set);
    // 6. Parents, with the first child that needed them.
    Ok(set.finish())
}
