//! Drawing the explorer: the layer list, the file tree, the wasted-files panel, the status
//! line and the help overlay. Key handling and state are in the parent module.

use super::*;

impl App {
    /// Draws the whole screen.
    pub fn draw(&mut self, f: &mut Frame<'_>) {
        let area = f.area();
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let msg = format!(
                "Terminal too small ({}×{}): pare xray --tui needs at least {MIN_WIDTH}×{MIN_HEIGHT}. \
                 Enlarge it, or press q to quit.",
                area.width, area.height
            );
            f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
            return;
        }
        let [main, status] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(2)]).areas(area);
        let left_w = (main.width / 3).clamp(28, 60);
        let [left, right] =
            Layout::horizontal([Constraint::Length(left_w), Constraint::Min(20)]).areas(main);
        self.draw_layers(f, left);
        if self.wasted.is_some() {
            self.draw_wasted(f, right);
        } else {
            self.draw_tree(f, right);
        }
        self.draw_status(f, status);
        if self.help {
            self.draw_help(f, area);
        }
    }

    fn block(&self, title: String, focused: bool) -> Block<'static> {
        let style = if focused {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default().fg(Color::DarkGray)
        };
        Block::default()
            .borders(Borders::ALL)
            .border_style(style)
            .title(title)
    }

    fn draw_layers(&self, f: &mut Frame<'_>, area: Rect) {
        let block = self.block(
            format!(" Layers ({}) ", self.image.layers.len()),
            self.focus == Focus::Layers,
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let h = inner.height as usize;
        let start = self.layer.saturating_sub(h.saturating_sub(1));
        let lines: Vec<Line<'_>> = self
            .image
            .layers
            .iter()
            .skip(start)
            .take(h)
            .map(|l| {
                let text = format!(
                    "{:>3} {:>8}  {}",
                    l.index,
                    human_bytes(l.size),
                    printable(&l.instruction)
                );
                let mut style = Style::default();
                if l.index == self.layer {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                Line::styled(text, style)
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_tree(&mut self, f: &mut Frame<'_>, area: Rect) {
        let scope = if self.aggregated {
            format!("layers 0–{}", self.layer)
        } else {
            format!("layer {} only", self.layer)
        };
        let title = match &self.search {
            Some(q) => format!(" Files · {scope} · search \"{}\" ", printable(q)),
            None => format!(" Files · {scope} "),
        };
        let block = self.block(title, self.focus == Focus::Tree);
        let inner = block.inner(area);
        f.render_widget(block, area);
        self.refresh_rows();
        let rows = &self.rows.rows;
        let h = inner.height as usize;
        if rows.is_empty() {
            f.render_widget(Paragraph::new("(nothing to show)"), inner);
            return;
        }
        self.cursor = self.cursor.min(rows.len() - 1);
        follow(self.cursor, &mut self.scroll, h);
        let lines: Vec<Line<'_>> = rows
            .iter()
            .enumerate()
            .skip(self.scroll)
            .take(h)
            .map(|(i, r)| {
                let e = self.view.entry(r.id);
                let mark = e.map(|e| e.mark).unwrap_or(Mark::Unchanged);
                let size = if r.dir {
                    self.view.dir(r.id).map_or(0, |d| d.size)
                } else {
                    e.map_or(0, |e| e.size)
                };
                let meta = match e {
                    Some(e) => format!("{:04o} {:>5}:{:<5}", e.mode, e.uid, e.gid),
                    None => format!("{:>16}", ""),
                };
                let icon = if r.dir {
                    if self.open.contains(&r.id) {
                        "▾ "
                    } else {
                        "▸ "
                    }
                } else {
                    "  "
                };
                let name = if self.search.as_deref().is_some_and(|q| !q.is_empty()) {
                    format!("/{}", self.view.path(r.id))
                } else {
                    self.view.name(r.id).to_string()
                };
                let mut text = format!(
                    "{} {meta} {:>9}  {}{icon}{}",
                    mark_sign(mark),
                    human_bytes(size),
                    "  ".repeat(r.depth),
                    printable(&name)
                );
                if let Some(l) = e.and_then(|e| e.link) {
                    text.push_str(" → ");
                    text.push_str(&printable(l));
                }
                let mut style = mark_style(mark);
                if i == self.cursor && self.focus == Focus::Tree {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                Line::styled(text, style)
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn draw_wasted(&mut self, f: &mut Frame<'_>, area: Rect) {
        let list = self.wasted.as_deref().unwrap_or_default();
        let total: u64 = list.iter().map(|w| w.bytes).sum();
        let block = self.block(
            format!(
                " Wasted: {} in {} copies (w or Esc: back) ",
                human_bytes(total),
                list.len()
            ),
            true,
        );
        let inner = block.inner(area);
        f.render_widget(block, area);
        let h = inner.height as usize;
        follow(self.cursor, &mut self.scroll, h);
        let lines: Vec<Line<'_>> = list
            .iter()
            .enumerate()
            .skip(self.scroll)
            .take(h)
            .map(|(i, w)| {
                let text = format!(
                    "{:>9}  layer {:>2} → {:>2}  {}",
                    human_bytes(w.bytes),
                    w.layer,
                    w.by_layer,
                    printable(w.path.as_str())
                );
                let mut style = Style::default().fg(Color::Red);
                if i == self.cursor {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                Line::styled(text, style)
            })
            .collect();
        if lines.is_empty() {
            f.render_widget(Paragraph::new("No wasted bytes."), inner);
        } else {
            f.render_widget(Paragraph::new(lines), inner);
        }
    }

    fn draw_status(&self, f: &mut Frame<'_>, area: Rect) {
        let on = |bit: u8, label: &'static str, m: Mark| {
            let style = if self.show & bit != 0 {
                mark_style(m).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
                    .fg(Color::DarkGray)
                    .add_modifier(Modifier::CROSSED_OUT)
            };
            Span::styled(label, style)
        };
        let l = self.image.layers.get(self.layer);
        let first = Line::from(vec![
            Span::raw(format!(
                " {} · layer {}/{} {} · ",
                printable(&self.image.name),
                self.layer,
                self.image.layers.len().saturating_sub(1),
                l.map(|l| l.digest.get(..19).unwrap_or(&l.digest).to_string())
                    .unwrap_or_default()
            )),
            on(1, "1:added ", Mark::Added),
            on(2, "2:modified ", Mark::Modified),
            on(4, "3:removed ", Mark::Removed),
            on(8, "4:unchanged", Mark::Unchanged),
        ]);
        let second = if self.typing {
            Line::from(format!(
                " Search: {}▏ (Enter keep, Esc clear)",
                printable(self.search.as_deref().unwrap_or(""))
            ))
        } else {
            Line::styled(
                " Tab switch · a all-layers/this-layer · / search · w wasted · e/c expand/collapse all · ? help · q quit",
                Style::default().fg(Color::DarkGray),
            )
        };
        f.render_widget(Paragraph::new(vec![first, second]), area);
    }

    fn draw_help(&self, f: &mut Frame<'_>, area: Rect) {
        let w = 70.min(area.width.saturating_sub(2));
        let h = (HELP.len() as u16 + 4).min(area.height.saturating_sub(2));
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, r);
        let lines: Vec<Line<'_>> = HELP
            .iter()
            .map(|(k, v)| {
                Line::from(vec![
                    Span::styled(format!(" {k:<28}"), Style::default().fg(Color::Cyan)),
                    Span::raw(*v),
                ])
            })
            .collect();
        f.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" Keys (any key closes) "),
            ),
            r,
        );
    }
}
