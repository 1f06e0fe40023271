// The transcript: one entry per turn with the prompt, the spoken sentences (the one being heard
// is highlighted, those already heard are plain, those still to come are dimmed), a line of
// facts (audio length, how it ended) and the LLM's raw text, folded away.

const MAX_TURNS = 50;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Transcript {
  constructor(list) {
    this.list = list;
  }

  addTurn(id, prompt) {
    const view = new TurnView(id, prompt);
    this.list.append(view.root);
    while (this.list.children.length > MAX_TURNS) this.list.firstElementChild.remove();
    view.root.scrollIntoView({ block: "end" });
    return view;
  }
}

export class TurnView {
  constructor(id, prompt) {
    this.id = id;
    this.root = element("li", "turn");
    this.root.dataset.turn = id;
    this.answer = element("p", "answer");
    this.meta = element("p", "meta", "waiting for the answer…");
    this.caption = element("div", "caption");
    const details = element("details", "captions");
    details.append(element("summary", "", "the LLM's raw text, as streamed"), this.caption);
    this.root.append(element("p", "you", prompt), this.answer, this.meta, details);
    this.sentences = new Map(); // index → span
    this.current = null;
  }

  /** The LLM's text so far (after a resume, shorter: the rest comes again). */
  setCaption(text) {
    this.caption.textContent = text;
  }

  addSentence(index, text) {
    const known = this.sentences.get(index);
    if (known !== undefined) {
      known.textContent = text; // sent again after a resume
      return;
    }
    const span = element("span", "sentence upcoming", text);
    span.dataset.index = String(index);
    if (this.answer.childElementCount > 0) this.answer.append(" ");
    this.answer.append(span);
    this.sentences.set(index, span);
  }

  /** Mark sentence `index` as the one being heard (null: none yet; Infinity: all heard). */
  highlight(index) {
    if (index === this.current) return;
    this.current = index;
    for (const [i, span] of this.sentences) {
      const state = index === null || i > index ? "upcoming" : i === index ? "current" : "heard";
      span.className = `sentence ${state}`;
      if (state === "current") span.scrollIntoView({ block: "nearest" });
    }
  }

  setMeta(text) {
    this.meta.textContent = text;
  }

  setState(state) {
    this.root.dataset.state = state;
  }
}
