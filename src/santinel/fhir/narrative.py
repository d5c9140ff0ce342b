"""Safe narrative XHTML (R4 `narrative.html`, invariants txt-1 and txt-2).

The div is checked with the standard library's HTML tokenizer, which never resolves entities
declared in the document nor fetches anything: a DOCTYPE or ENTITY declaration is itself refused.
"""

from __future__ import annotations

from html.parser import HTMLParser

XHTML_NS = "http://www.w3.org/1999/xhtml"

# R4 txt-1: basic HTML 4.0 formatting elements, <a>, images, internal styles.
ALLOWED_ELEMENTS = frozenset(
    [
        "a",
        "abbr",
        "acronym",
        "b",
        "big",
        "blockquote",
        "br",
        "caption",
        "cite",
        "code",
        "col",
        "colgroup",
        "dd",
        "dfn",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "tt",
        "ul",
        "var",
    ]
)
URL_ATTRIBUTES = frozenset({"href", "src", "cite", "longdesc"})
# An allow-list: schemes that cannot run script (ftp: links appear in the official examples).
SAFE_URL_SCHEMES = (
    "http:",
    "https:",
    "ftp:",
    "mailto:",
    "tel:",
    "#",
    "data:image/",
    "urn:",
    "cid:",
)


class _NarrativeChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.depth = 0
        self.roots = 0
        self.root_xmlns: str | None = None
        self.has_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_element(tag, attrs)
        if self.depth == 0:
            self.roots += 1
            self.root_xmlns = dict(attrs).get("xmlns")
            if tag != "div":
                self.problems.append(f"the root element must be <div>, not <{tag}>")
        self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._check_element(tag, attrs)
        if tag == "img":
            self.has_text = True

    def handle_endtag(self, tag: str) -> None:
        self.depth -= 1

    def handle_data(self, data: str) -> None:
        if data.strip():
            if self.depth == 0:
                self.problems.append("text outside the root <div>")
            self.has_text = True

    def handle_decl(self, decl: str) -> None:
        self.problems.append("declarations (DOCTYPE, ENTITY) are not allowed")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("declarations (CDATA, ENTITY) are not allowed")

    def handle_pi(self, data: str) -> None:
        self.problems.append("processing instructions are not allowed")

    def _check_element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_ELEMENTS:
            self.problems.append(f"element <{tag}> is not allowed")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler attribute '{name}' is not allowed")
            elif name in URL_ATTRIBUTES and value is not None and not _is_safe_url(value):
                self.problems.append(f"attribute '{name}' has an unsafe URL")


def _is_safe_url(url: str) -> bool:
    cleaned = "".join(url.split()).lower()
    if ":" not in cleaned.split("/", 1)[0]:
        return True  # relative URL or fragment
    return cleaned.startswith(SAFE_URL_SCHEMES)


def narrative_problems(div: str) -> list[str]:
    """Reasons why `div` is not safe, conformant narrative; empty when it is."""
    checker = _NarrativeChecker()
    checker.feed(div)
    checker.close()
    problems = list(dict.fromkeys(checker.problems))
    if checker.roots != 1:
        problems.append("the narrative must be exactly one <div> element")
    elif checker.root_xmlns != XHTML_NS:
        problems.append(f'the <div> must declare xmlns="{XHTML_NS}"')
    if not checker.has_text:
        problems.append("the narrative must have some non-whitespace content (txt-2)")
    return problems
