//! The tree pane's lines, built from the view, the expanded directories, the mark filter and
//! the search, and kept until one of those changes: after `e` on a large image they are every
//! path, too many to build again for each key press or redraw.

use super::*;

/// One visible line of the tree pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Row {
    pub(super) id: u32,
    pub(super) depth: usize,
    pub(super) dir: bool,
}

/// The rows last built and what they were built from.
#[derive(Debug, Default)]
pub(super) struct RowCache {
    /// [`App::layout`] when they were built.
    layout: u64,
    /// [`App::show`] when they were built.
    show: u8,
    /// The search they list the matches of (`None`: the tree).
    search: Option<String>,
    pub(super) rows: Vec<Row>,
    /// How many times rows were built (the tests count them).
    pub(super) builds: u64,
}

impl App {
    /// Builds the rows again when the view, the expanded directories, the mark filter or the
    /// search changed since they were built; otherwise keeps them.
    pub(super) fn refresh_rows(&mut self) {
        let search = self.search.as_deref().filter(|q| !q.is_empty());
        let c = &self.rows;
        if c.builds > 0
            && c.layout == self.layout
            && c.show == self.show
            && c.search.as_deref() == search
        {
            return;
        }
        let search = search.map(str::to_owned);
        let rows = self.build_rows(search.as_deref());
        self.rows = RowCache {
            layout: self.layout,
            show: self.show,
            search,
            rows,
            builds: self.rows.builds + 1,
        };
    }

    /// The rows, built again only when needed ([`App::refresh_rows`]).
    pub(super) fn rows(&mut self) -> &[Row] {
        self.refresh_rows();
        &self.rows.rows
    }

    fn visible(&self, id: u32) -> bool {
        if let Some(d) = self.view.dir(id) {
            if self.view.is_dir(id) {
                return d.marks & self.show != 0;
            }
        }
        self.view
            .entry(id)
            .is_some_and(|e| e.mark.bit() & self.show != 0)
    }

    /// The tree pane's lines: expanded directories' children, filtered by mark; or, with a
    /// `search`, every matching path.
    pub(super) fn build_rows(&self, search: Option<&str>) -> Vec<Row> {
        let mut out = Vec::new();
        if let Some(q) = search {
            let q = q.to_lowercase();
            let mut p = String::new();
            for &id in self.view.entries().iter() {
                let Some(e) = self.view.entry(id) else {
                    continue;
                };
                if e.mark.bit() & self.show == 0 {
                    continue;
                }
                self.view.path_into(id, &mut p);
                if p.to_lowercase().contains(&q) {
                    out.push(Row {
                        id,
                        depth: 0,
                        dir: e.kind == Kind::Dir,
                    });
                }
            }
            return out;
        }
        // Depth-first through the expanded directories (a stack of nodes still to show).
        let mut tmp: Vec<(u32, usize)> = Vec::new();
        for &k in self.view.children(ROOT).iter().rev() {
            tmp.push((k, 0));
        }
        while let Some((id, depth)) = tmp.pop() {
            if !self.visible(id) {
                continue;
            }
            let dir = self.view.is_dir(id);
            if dir && self.open.contains(&id) {
                for &k in self.view.children(id).iter().rev() {
                    tmp.push((k, depth + 1));
                }
            }
            out.push(Row { id, depth, dir });
        }
        out
    }
}
