//! A message body's Markdown subset: parsed into a small tree, then rendered
//! as views, the same on the server and in the browser.
//!
//! The subset: bold, italic, strike-through, inline code, code blocks,
//! quotes, lists, paragraphs and line breaks (one newline is a break, as in
//! any chat), `[text](url)` links to http(s) addresses, bare http(s)
//! addresses ([`text::pieces`]) and `@name` mentions. Headings are a bold
//! line. Everything else (raw HTML, images, other links, reference
//! definitions, rules) shows as the text that was typed: nothing a person
//! wrote becomes markup but through these nodes.

use super::i18n::K;
use super::layout::Layout;
use super::text::{self, Piece};
use crate::protocol::{MAX_MENTIONS, mention_spans};
use leptos::prelude::*;
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag};
use std::ops::Range;

/// Deepest nesting of quotes, lists and emphasis kept; what is deeper is
/// shown as plain lines, so that rendering never recurses without bound.
pub const MAX_DEPTH: usize = 8;

/// A node of a message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Text(String),
    /// A line break.
    Break,
    /// Inline code.
    Code(String),
    /// `@name`, the name without the `@`.
    Mention(String),
    /// An http(s) link: typed as `[text](url)`, `<url>`, or bare.
    Link {
        url: String,
        children: Vec<Node>,
    },
    Strong(Vec<Node>),
    Em(Vec<Node>),
    Strike(Vec<Node>),
    Para(Vec<Node>),
    /// A heading, shown as a bold line.
    Heading(Vec<Node>),
    /// A fenced or indented code block's text.
    CodeBlock(String),
    Quote(Vec<Node>),
    /// A list, numbered from `start` when it is ordered; each item's nodes.
    List {
        start: Option<u64>,
        items: Vec<Vec<Node>>,
    },
}

/// What an open element becomes when it ends.
#[derive(Debug)]
enum Kind {
    Root,
    Para,
    Heading,
    Quote,
    List(Option<u64>),
    Item,
    Strong,
    Em,
    Strike,
    Link(String),
    CodeBlock,
    /// Deeper than [`MAX_DEPTH`]: its children join the parent's, on a new
    /// line when it was a block.
    Flat {
        block: bool,
    },
}

struct Frame {
    kind: Kind,
    children: Vec<Node>,
}

struct Builder<'a> {
    src: &'a str,
    stack: Vec<Frame>,
    /// Text not yet split into links and mentions: pulldown-cmark cuts text
    /// at every `&`, `[` or inline tag, which must not cut an address.
    buf: String,
    /// Frames that are not [`Kind::Flat`], the root aside.
    depth: usize,
    /// Inside a link: text is only text.
    in_link: usize,
    /// Events of a skipped element (an image, a refused link) still open.
    skip: usize,
    /// Where the last top-level block ended in `src`.
    cursor: usize,
    /// Names mentioned so far, lower-cased: past [`MAX_MENTIONS`], as on the
    /// server, a new name is text.
    mentioned: Vec<String>,
}

/// Parses a body into its tree. Never fails: what is not in the subset is
/// text.
pub fn parse(body: &str) -> Vec<Node> {
    let mut b = Builder {
        src: body,
        stack: vec![Frame {
            kind: Kind::Root,
            children: Vec::new(),
        }],
        buf: String::new(),
        depth: 0,
        in_link: 0,
        skip: 0,
        cursor: 0,
        mentioned: Vec::new(),
    };
    for (event, range) in Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH).into_offset_iter() {
        b.event(event, range);
    }
    b.flush();
    b.gap(body.len());
    // Unclosed frames cannot happen (pulldown-cmark closes all it opens);
    // fold them all the same rather than lose their text.
    while b.stack.len() > 1 {
        b.close();
    }
    b.stack.pop().map(|f| f.children).unwrap_or_default()
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        if self.skip > 0 {
            match event {
                Event::Start(_) => self.skip += 1,
                Event::End(_) => self.skip -= 1,
                _ => {}
            }
            return;
        }
        if self.stack.len() == 1 {
            self.gap(range.start);
        }
        match event {
            Event::Text(t) => self.buf.push_str(&t),
            // Typed HTML is text, exactly as typed.
            Event::Html(t) | Event::InlineHtml(t) => self.buf.push_str(&t),
            Event::Code(c) => {
                self.flush();
                self.push(Node::Code(c.into_string()));
            }
            Event::SoftBreak | Event::HardBreak => self.buf.push('\n'),
            Event::Start(tag) => self.start(tag, range.clone()),
            Event::End(_) => {
                self.flush_end();
                self.close();
            }
            // A rule, math, footnotes, task boxes: their source.
            Event::Rule => self.literal_block(range.clone()),
            _ => self
                .buf
                .push_str(self.src.get(range.clone()).unwrap_or_default()),
        }
        // Back at the top: a block ended here.
        if self.stack.len() == 1 {
            self.cursor = self.cursor.max(range.end);
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        let kind = match tag {
            Tag::Paragraph | Tag::HtmlBlock => Kind::Para,
            Tag::Heading { .. } => Kind::Heading,
            Tag::BlockQuote(_) => Kind::Quote,
            Tag::CodeBlock(_) => Kind::CodeBlock,
            Tag::List(start) => Kind::List(start),
            Tag::Item => Kind::Item,
            Tag::Emphasis => Kind::Em,
            Tag::Strong => Kind::Strong,
            Tag::Strikethrough => Kind::Strike,
            Tag::Link {
                link_type: LinkType::Inline | LinkType::Autolink,
                dest_url,
                ..
            } if self.in_link == 0 && is_web_url(&dest_url) => Kind::Link(dest_url.into_string()),
            // Images, links elsewhere or by reference, anything else
            // inline: the text as typed.
            _ => {
                self.buf.push_str(self.src.get(range).unwrap_or_default());
                self.skip = 1;
                return;
            }
        };
        self.flush();
        // A list's items nest with it: the list was the level that counted.
        let item_of_list = matches!(kind, Kind::Item)
            && matches!(self.stack.last().map(|f| &f.kind), Some(Kind::List(_)));
        let kind = if matches!(kind, Kind::CodeBlock) || item_of_list || self.depth < MAX_DEPTH {
            if !matches!(kind, Kind::CodeBlock | Kind::Item) {
                self.depth += 1;
            }
            kind
        } else {
            Kind::Flat {
                block: !matches!(kind, Kind::Strong | Kind::Em | Kind::Strike | Kind::Link(_)),
            }
        };
        if matches!(kind, Kind::Link(_)) {
            self.in_link += 1;
        }
        self.stack.push(Frame {
            kind,
            children: Vec::new(),
        });
    }

    /// Ends the open element: its node joins its parent's children.
    fn close(&mut self) {
        if self.stack.len() <= 1 {
            return;
        }
        let Some(Frame { kind, children }) = self.stack.pop() else {
            return;
        };
        if !matches!(
            kind,
            Kind::Flat { .. } | Kind::CodeBlock | Kind::Item | Kind::Root
        ) {
            self.depth -= 1;
        }
        let node = match kind {
            Kind::Root => return,
            Kind::Para => Node::Para(children),
            Kind::Heading => Node::Heading(children),
            Kind::Quote => Node::Quote(children),
            Kind::Strong => Node::Strong(children),
            Kind::Em => Node::Em(children),
            Kind::Strike => Node::Strike(children),
            Kind::Link(url) => {
                self.in_link -= 1;
                Node::Link { url, children }
            }
            Kind::CodeBlock => {
                let mut code: String = children
                    .into_iter()
                    .filter_map(|n| match n {
                        Node::Text(t) => Some(t),
                        _ => None,
                    })
                    .collect();
                if code.ends_with('\n') {
                    code.pop();
                }
                Node::CodeBlock(code)
            }
            Kind::Item => {
                // An item outside a list cannot come; keep its text.
                match self.stack.last_mut() {
                    Some(Frame {
                        kind: Kind::List(_),
                        children: items,
                    }) => items.push(Node::Para(children)),
                    Some(parent) => parent.children.extend(children),
                    None => {}
                }
                return;
            }
            Kind::List(start) => Node::List {
                start,
                items: children
                    .into_iter()
                    .map(|n| match n {
                        // Items were kept as a paragraph of their nodes.
                        Node::Para(nodes) => nodes,
                        other => vec![other],
                    })
                    .collect(),
            },
            Kind::Flat { block } => {
                if let Some(parent) = self.stack.last_mut() {
                    if block
                        && !parent.children.is_empty()
                        && parent.children.last() != Some(&Node::Break)
                    {
                        parent.children.push(Node::Break);
                    }
                    parent.children.extend(children);
                }
                return;
            }
        };
        self.push(node);
    }

    fn push(&mut self, node: Node) {
        if let Some(top) = self.stack.last_mut() {
            push_node(&mut top.children, node);
        }
    }

    /// Text before an element's end: a trailing newline (an HTML block's)
    /// is no line break.
    fn flush_end(&mut self) {
        if !matches!(self.stack.last().map(|f| &f.kind), Some(Kind::CodeBlock)) {
            let kept = self.buf.trim_end_matches('\n').len();
            self.buf.truncate(kept);
        }
        self.flush();
    }

    /// The pending text as nodes: line breaks, links and mentions, or as
    /// it is in code and inside links.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.buf);
        let plain = self.in_link > 0;
        let Some(top) = self.stack.last_mut() else {
            return;
        };
        if matches!(top.kind, Kind::CodeBlock) {
            top.children.push(Node::Text(text));
            return;
        }
        let out = &mut top.children;
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                out.push(Node::Break);
            }
            if plain {
                push_node(out, Node::Text(line.to_string()));
                continue;
            }
            for piece in text::pieces(line) {
                match piece {
                    Piece::Link(url) => out.push(Node::Link {
                        children: vec![Node::Text(url.clone())],
                        url,
                    }),
                    Piece::Text(t) => mentions(&t, &mut self.mentioned, out),
                }
            }
        }
    }

    /// Source text between top-level blocks that made no event (reference
    /// definitions such as `[1]: https://…`): shown as typed.
    fn gap(&mut self, until: usize) {
        if until <= self.cursor {
            return;
        }
        let lines: Vec<&str> = self
            .src
            .get(self.cursor..until)
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        self.cursor = until;
        if !lines.is_empty() {
            self.literal(&lines.join("\n"));
        }
    }

    fn literal_block(&mut self, range: Range<usize>) {
        let text = self.src.get(range).unwrap_or_default().trim().to_string();
        self.flush();
        self.literal(&text);
    }

    /// A paragraph of text as typed.
    fn literal(&mut self, text: &str) {
        self.flush();
        self.start(Tag::Paragraph, 0..0);
        self.buf.push_str(text);
        self.flush();
        self.close();
    }
}

/// Adds a node, joining text to the text before it.
/// A body as the words a reader sees, without its marks (`**`, `` ` ``,
/// `>`, list bullets): for a one-line excerpt such as a search result's.
/// Blocks and line breaks become single spaces.
pub fn plain_text(body: &str) -> String {
    fn walk(nodes: &[Node], out: &mut String) {
        for n in nodes {
            match n {
                Node::Text(t) | Node::Code(t) | Node::CodeBlock(t) => out.push_str(t),
                Node::Mention(name) => {
                    out.push('@');
                    out.push_str(name);
                }
                Node::Break => out.push(' '),
                Node::Link { children, .. }
                | Node::Strong(children)
                | Node::Em(children)
                | Node::Strike(children) => walk(children, out),
                Node::Para(children) | Node::Heading(children) | Node::Quote(children) => {
                    out.push(' ');
                    walk(children, out);
                    out.push(' ');
                }
                Node::List { items, .. } => {
                    for item in items {
                        out.push(' ');
                        walk(item, out);
                        out.push(' ');
                    }
                }
            }
        }
    }
    let mut out = String::with_capacity(body.len());
    walk(&parse(body), &mut out);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn push_node(out: &mut Vec<Node>, node: Node) {
    match (out.last_mut(), node) {
        (_, Node::Text(t)) if t.is_empty() => {}
        (Some(Node::Text(prev)), Node::Text(t)) => prev.push_str(&t),
        (_, node) => out.push(node),
    }
}

/// Text with its `@name` mentions as nodes.
fn mentions(text: &str, mentioned: &mut Vec<String>, out: &mut Vec<Node>) {
    let mut at = 0;
    for span in mention_spans(text) {
        let name = &text[span.start + 1..span.end];
        let lower = name.to_lowercase();
        if !mentioned.contains(&lower) {
            if mentioned.len() == MAX_MENTIONS {
                continue;
            }
            mentioned.push(lower);
        }
        push_node(out, Node::Text(text[at..span.start].to_string()));
        out.push(Node::Mention(name.to_string()));
        at = span.end;
    }
    push_node(out, Node::Text(text[at..].to_string()));
}

/// An address a link may go to: http or https, to a host, nothing that
/// would end an address in text.
fn is_web_url(url: &str) -> bool {
    matches!(text::pieces(url).as_slice(), [Piece::Link(u)] if u == url)
}

/// A message body, formatted.
#[component]
pub fn MessageBody(
    /// The body as typed.
    #[prop(into)]
    body: String,
    /// The viewer's name: mentions of them stand out.
    #[prop(into)]
    me: Signal<Option<String>>,
) -> impl IntoView {
    view! { <div class="text">{nodes(parse(&body), me)}</div> }
}

fn nodes(list: Vec<Node>, me: Signal<Option<String>>) -> AnyView {
    list.into_iter()
        .map(|n| node(n, me))
        .collect_view()
        .into_any()
}

fn node(n: Node, me: Signal<Option<String>>) -> AnyView {
    match n {
        Node::Text(t) => t.into_any(),
        Node::Break => view! { <br/> }.into_any(),
        Node::Code(c) => view! { <code>{c}</code> }.into_any(),
        Node::Mention(name) => {
            let lower = name.to_lowercase();
            let mine = move || me.with(|m| m.as_ref().is_some_and(|m| m.to_lowercase() == lower));
            view! { <span class="mention" class=("me", mine)>{format!("@{name}")}</span> }
                .into_any()
        }
        Node::Link { url, children } => {
            // A bare address shows itself; a named link says where it goes.
            let bare = matches!(children.as_slice(), [Node::Text(t)] if *t == url);
            let title = (!bare).then(|| url.clone());
            view! {
                <a href=url title=title rel="noopener noreferrer nofollow" target="_blank">
                    {nodes(children, me)}
                </a>
            }
            .into_any()
        }
        Node::Strong(c) => view! { <strong>{nodes(c, me)}</strong> }.into_any(),
        Node::Em(c) => view! { <em>{nodes(c, me)}</em> }.into_any(),
        Node::Strike(c) => view! { <s>{nodes(c, me)}</s> }.into_any(),
        Node::Para(c) => view! { <p>{nodes(c, me)}</p> }.into_any(),
        Node::Heading(c) => {
            view! { <p class="heading"><strong>{nodes(c, me)}</strong></p> }.into_any()
        }
        Node::Quote(c) => view! { <blockquote>{nodes(c, me)}</blockquote> }.into_any(),
        Node::List { start: None, items } => view! { <ul>{list_items(items, me)}</ul> }.into_any(),
        Node::List {
            start: Some(n),
            items,
        } => view! { <ol start=(n != 1).then(|| n.to_string())>{list_items(items, me)}</ol> }
            .into_any(),
        Node::CodeBlock(code) => view! { <CodeBox code/> }.into_any(),
    }
}

fn list_items(items: Vec<Vec<Node>>, me: Signal<Option<String>>) -> AnyView {
    items
        .into_iter()
        .map(|item| view! { <li>{nodes(item, me)}</li> })
        .collect_view()
        .into_any()
}

/// A code block with its Copy button. The button shows once the page is
/// live (it needs the browser's clipboard); the server's page has the code.
#[component]
fn CodeBox(code: String) -> impl IntoView {
    let layout = expect_context::<Layout>();
    let copied = RwSignal::new(false);
    let code_el = NodeRef::<leptos::html::Code>::new();
    let text = StoredValue::new(code.clone());
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        copy_code(&text.get_value(), code_el, copied);
        #[cfg(not(feature = "hydrate"))]
        let _ = (text, code_el);
    };
    let label = move || layout.t(if copied.get() { K::Copied } else { K::Copy });
    view! {
        <div class="codeblock">
            <pre><code node_ref=code_el>{code}</code></pre>
            <button
                type="button"
                class="copy"
                hidden=move || !layout.hydrated.get()
                aria-live="polite"
                on:click=copy
            >
                {label}
            </button>
        </div>
    }
}

/// Writes the code to the clipboard and says so for two seconds. Without
/// the Clipboard API (a page served over plain http), selects the code so
/// that the keyboard can copy it.
#[cfg(feature = "hydrate")]
fn copy_code(code: &str, code_el: NodeRef<leptos::html::Code>, copied: RwSignal<bool>) {
    use wasm_bindgen::JsValue;
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    let has_clipboard = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
        .is_ok_and(|c| !c.is_undefined() && !c.is_null());
    if !has_clipboard {
        if let (Some(el), Ok(Some(sel))) = (code_el.get_untracked(), window.get_selection()) {
            let _ = sel.select_all_children(&el);
        }
        return;
    }
    let promise = navigator.clipboard().write_text(code);
    leptos::task::spawn_local(async move {
        if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
            copied.set(true);
            set_timeout(move || copied.set(false), std::time::Duration::from_secs(2));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::Node::*;
    use super::*;

    #[test]
    fn plain_text_drops_the_marks_and_keeps_the_words() {
        assert_eq!(plain_text("un **café** `noir`"), "un café noir");
        assert_eq!(
            plain_text("> quoted\n\n- one\n- *two*\n\n```\nlet x = 1;\n```"),
            "quoted one two let x = 1;"
        );
        assert_eq!(
            plain_text("hi @ann, see [the doc](https://x.example)"),
            "hi @ann, see the doc"
        );
        assert_eq!(plain_text("<b>raw</b>"), "<b>raw</b>");
    }
    use std::time::{Duration, Instant};

    fn t(s: &str) -> Node {
        Text(s.into())
    }
    fn p(c: Vec<Node>) -> Node {
        Para(c)
    }
    fn link(url: &str) -> Node {
        Link {
            url: url.into(),
            children: vec![t(url)],
        }
    }

    #[test]
    fn plain_text_is_a_paragraph() {
        assert_eq!(parse("hello"), vec![p(vec![t("hello")])]);
        assert_eq!(parse(""), vec![]);
        assert_eq!(parse("   "), vec![]);
    }

    #[test]
    fn inline_formatting() {
        assert_eq!(
            parse("**b** *i* _i_ ~~s~~ `c <b>`"),
            vec![p(vec![
                Strong(vec![t("b")]),
                t(" "),
                Em(vec![t("i")]),
                t(" "),
                Em(vec![t("i")]),
                t(" "),
                Strike(vec![t("s")]),
                t(" "),
                Code("c <b>".into()),
            ])]
        );
        assert_eq!(
            parse("***both***"),
            vec![p(vec![Em(vec![Strong(vec![t("both")])])])]
        );
    }

    #[test]
    fn one_newline_is_a_line_break() {
        assert_eq!(
            parse("one\ntwo  \nthree\n\nfour"),
            vec![
                p(vec![t("one"), Break, t("two"), Break, t("three")]),
                p(vec![t("four")])
            ]
        );
    }

    #[test]
    fn code_blocks_keep_their_text() {
        assert_eq!(
            parse("see:\n```rust\nfn main() {\n    <b>*x*</b> @bob\n}\n```\nafter"),
            vec![
                p(vec![t("see:")]),
                CodeBlock("fn main() {\n    <b>*x*</b> @bob\n}".into()),
                p(vec![t("after")]),
            ]
        );
        assert_eq!(parse("```\n```"), vec![CodeBlock(String::new())]);
        // Unclosed: to the end.
        assert_eq!(parse("```\na\n\nb"), vec![CodeBlock("a\n\nb".into())]);
    }

    #[test]
    fn quotes_and_nested_lists() {
        assert_eq!(
            parse("> quoted\n> **text**\n\nreply"),
            vec![
                Quote(vec![p(vec![t("quoted"), Break, Strong(vec![t("text")])])]),
                p(vec![t("reply")])
            ]
        );
        assert_eq!(
            parse("- a\n- b\n  1. one\n  2. two\n- c"),
            vec![List {
                start: None,
                items: vec![
                    vec![t("a")],
                    vec![
                        t("b"),
                        List {
                            start: Some(1),
                            items: vec![vec![t("one")], vec![t("two")]]
                        }
                    ],
                    vec![t("c")],
                ]
            }]
        );
        assert_eq!(
            parse("3. three\n4. four"),
            vec![List {
                start: Some(3),
                items: vec![vec![t("three")], vec![t("four")]]
            }]
        );
    }

    #[test]
    fn headings_are_bold_lines() {
        assert_eq!(
            parse("# Title\nbody"),
            vec![Heading(vec![t("Title")]), p(vec![t("body")])]
        );
    }

    #[test]
    fn raw_html_is_text_as_typed() {
        for body in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<b>not bold</b>",
            "<!-- hidden? -->",
        ] {
            assert_eq!(parse(body), vec![p(vec![t(body)])], "{body}");
        }
        assert_eq!(parse("a <b>b</b> c"), vec![p(vec![t("a <b>b</b> c")])]);
        assert_eq!(
            parse("<div>\n<script>x()</script>\n</div>"),
            vec![p(vec![
                t("<div>"),
                Break,
                t("<script>x()</script>"),
                Break,
                t("</div>")
            ])]
        );
    }

    #[test]
    fn links_only_to_web_addresses() {
        assert_eq!(
            parse("[the docs](https://example.com/a_(b)) and <http://x.test>"),
            vec![p(vec![
                Link {
                    url: "https://example.com/a_(b)".into(),
                    children: vec![t("the docs")]
                },
                t(" and "),
                link("http://x.test"),
            ])]
        );
        for body in [
            "[click](javascript:alert(1))",
            "[click](JavaScript:alert(1))",
            "[x](data:text/html,hi)",
            "[x](/relative)",
            "[x](ftp://example.com)",
            "<mailto:a@b.c>",
        ] {
            assert_eq!(parse(body), vec![p(vec![t(body)])], "{body}");
        }
        // An image is its text, the address in it as any bare address.
        assert_eq!(
            parse("![alt](https://example.com/i.png)"),
            vec![p(vec![
                t("![alt]("),
                link("https://example.com/i.png"),
                t(")")
            ])]
        );
        // What the page's older tests send: the same text, three links.
        let body = "docs: https://example.com/a?b=1&c=2, also (http://x.test/y). not javascript:alert(1) nor <a href=\"https://evil.test\">x</a>";
        let tree = parse(body);
        assert_eq!(text_of(&tree), body);
        let [Para(nodes)] = tree.as_slice() else {
            panic!("{tree:?}")
        };
        assert_eq!(nodes.iter().filter(|n| matches!(n, Link { .. })).count(), 3);
        // Bare addresses, as before, also where pulldown-cmark cuts text.
        assert_eq!(
            parse("see https://example.com/a?b=1&c=2#x, ok"),
            vec![p(vec![
                t("see "),
                link("https://example.com/a?b=1&c=2#x"),
                t(", ok")
            ])]
        );
        // No link inside a link.
        assert_eq!(
            parse("[see https://a.test](https://b.test)"),
            vec![p(vec![Link {
                url: "https://b.test".into(),
                children: vec![t("see https://a.test")]
            }])]
        );
    }

    #[test]
    fn reference_definitions_stay_visible() {
        assert_eq!(
            parse("[docs]\n\n[docs]: https://example.com"),
            vec![
                p(vec![t("[docs]")]),
                p(vec![t("[docs]: "), link("https://example.com")])
            ]
        );
        assert_eq!(parse("---"), vec![p(vec![t("---")])]);
        assert_eq!(
            parse("| a | b |\n|---|---|"),
            vec![p(vec![t("| a | b |"), Break, t("|---|---|")])]
        );
    }

    #[test]
    fn mentions_outside_code() {
        assert_eq!(
            parse("hi @bob, mail x@y.org `@carol`\n```\n@dave\n```"),
            vec![
                p(vec![
                    t("hi "),
                    Mention("bob".into()),
                    t(", mail x@y.org "),
                    Code("@carol".into())
                ]),
                CodeBlock("@dave".into()),
            ]
        );
        assert_eq!(
            parse("**@Bob.** [@x](https://a.test)"),
            vec![p(vec![
                Strong(vec![Mention("Bob".into()), t(".")]),
                t(" "),
                Link {
                    url: "https://a.test".into(),
                    children: vec![t("@x")]
                }
            ])]
        );
        // As on the server: past MAX_MENTIONS names, a new one is text.
        let many: String = (0..25).map(|i| format!("@u{i} ")).collect();
        let count = |nodes: &[Node]| match nodes {
            [Para(c)] => c.iter().filter(|n| matches!(n, Mention(_))).count(),
            _ => 0,
        };
        assert_eq!(count(&parse(&many)), MAX_MENTIONS);
        assert_eq!(count(&parse(&"@same ".repeat(30))), 30);
    }

    /// The deepest nesting of rendered nodes.
    fn depth(nodes: &[Node]) -> usize {
        nodes
            .iter()
            .map(|n| match n {
                Strong(c) | Em(c) | Strike(c) | Para(c) | Heading(c) | Quote(c) => 1 + depth(c),
                Link { children, .. } => 1 + depth(children),
                List { items, .. } => 1 + items.iter().map(|i| depth(i)).max().unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// All the text of a tree.
    fn text_of(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| match n {
                Text(s) | Code(s) | CodeBlock(s) => s.clone(),
                Mention(s) => format!("@{s}"),
                Break => "\n".into(),
                Strong(c) | Em(c) | Strike(c) | Para(c) | Heading(c) | Quote(c) => text_of(c),
                Link { children, .. } => text_of(children),
                List { items, .. } => items.iter().map(|i| text_of(i)).collect(),
            })
            .collect()
    }

    #[test]
    fn deep_nesting_is_capped_and_keeps_its_text() {
        let quotes = format!("{}deep", ">".repeat(200));
        let tree = parse(&quotes);
        assert!(depth(&tree) <= MAX_DEPTH + 1, "{}", depth(&tree));
        assert!(text_of(&tree).contains("deep"));

        let list: String = (0..100)
            .map(|i| format!("{}- level {i}\n", "  ".repeat(i)))
            .collect();
        let tree = parse(&list);
        assert!(depth(&tree) <= 2 * MAX_DEPTH + 1, "{}", depth(&tree));
        let text = text_of(&tree);
        assert!(
            text.contains("level 0") && text.contains("level 99"),
            "{text}"
        );
        // Past the cap, each item is a line of its own.
        assert!(text.contains("level 98\nlevel 99"), "{text}");

        let stars = format!("{}x{}", "*".repeat(30), "*".repeat(30));
        assert!(depth(&parse(&stars)) <= MAX_DEPTH + 1);
    }

    #[test]
    fn pathological_bodies_parse_quickly() {
        let bodies = [
            "*".repeat(4000),
            "*a ".repeat(1300),
            "[".repeat(4000),
            "[a](".repeat(1000),
            ">".repeat(4000),
            "- ".repeat(2000),
            "<".repeat(4000),
            "`".repeat(4000),
            "@a".repeat(2000),
            "https://".repeat(500),
            (0..400)
                .map(|i| format!("{}- x\n", " ".repeat(i % 40)))
                .collect(),
            (0..1000).map(|_| "1. ").collect::<String>() + "x",
        ];
        for body in &bodies {
            let start = Instant::now();
            let tree = parse(body);
            let took = start.elapsed();
            assert!(
                took < Duration::from_millis(200),
                "{took:?} for {:?}…",
                &body[..20]
            );
            assert!(depth(&tree) <= 2 * MAX_DEPTH + 1);
        }
    }
}
