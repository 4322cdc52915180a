// Console strings in English and Chinese; the language comes from the browser and can be switched.

const STRINGS = {
  en: {
    collection: "Collection", collections: "Collections", upload: "Upload", search: "Search", ask: "Ask",
    documents: "Documents", key: "API key", switch_lang: "中文", switch_lang_label: "切换到中文",
    name: "Name", chunks: "Chunks", model: "Embedding model", fusion: "Fusion", actions: "Actions",
    create: "Create", create_collection: "Create a collection", delete: "Delete", refresh: "Refresh",
    confirm_delete: "Delete {name}? This cannot be undone.", deleted: "Deleted {name}.", created: "Created {name}.",
    no_collections: "No collections yet.", no_collection: "Choose or create a collection first.",
    drop_here: "Drop files or a folder here", choose_files: "Choose files", choose_folder: "Choose a folder",
    upload_to: "Files go to collection {name}.", uploading: "Uploading", queued: "Queued", running: "Indexing",
    succeeded: "Done", failed: "Failed", job_summary: "{documents} documents, {chunks} chunks", file: "File", reason: "Reason",
    files_n: "{n} files", no_write: "This key cannot write to {name}.",
    query: "Query", mode: "Mode", hybrid: "Hybrid", dense: "Dense (meaning)", bm25: "BM25 (keywords)",
    alpha: "α (dense weight)", top_k: "Results", debug: "Debug view", go: "Search", no_hits: "No results.",
    score: "Score", section: "Section", source: "Source", rank: "Rank", timings: "Timings (ms)", stage: "Stage",
    legs: "Each leg", fused: "Fused", hit: "Hit",
    question: "Question", send: "Ask", new_chat: "New conversation", references: "References",
    thinking: "Answering…", you: "You", assistant: "zhiku", quote: "Quoted from the sources",
    refused: "No answer", best_passages: "The best passages found", cited: "Cited passage",
    close: "Close", open: "Open",
    "refusal.no_results": "Nothing in this collection matches the question.",
    "refusal.weak_retrieval": "The passages found match the question too weakly to answer from.",
    "refusal.off_topic": "The passages found are about something else.",
    "refusal.model": "The model said the sources do not contain the answer.",
    "refusal.unsupported": "The draft answer was not supported by the sources, so it was withheld.",
    "refusal.ungrounded": "The draft answer cited no source, so it was withheld.",
    "refusal.unknown": "The sources do not support an answer.",
    filter: "Filter by metadata", filter_help: "key=value, comma-separated (e.g. lang=en, year=2020)",
    apply: "Apply", previous: "Previous", next: "Next", title: "Title", doc_id: "Document id", metadata: "Metadata",
    text: "Text", back: "Back", no_documents: "No documents.", page: "From {from}",
    key_help: "Kept in this tab's session storage only, and sent as Authorization: Bearer.",
    save: "Save", clear: "Clear", scope: "Scope", scope_of: "This key: {scope} on {collections}.",
    open_access: "No API keys are configured: full access from this machine.",
    saved: "Key saved.", cleared: "Key cleared.",
    "error.unauthorized": "An API key is needed: enter one under API key.",
    "error.forbidden": "This key may not do that.", "error.network": "The server could not be reached.",
  },
  zh: {
    collection: "知识库", collections: "知识库", upload: "上传", search: "搜索", ask: "问答",
    documents: "文档", key: "API 密钥", switch_lang: "English", switch_lang_label: "Switch to English",
    name: "名称", chunks: "分块", model: "嵌入模型", fusion: "融合", actions: "操作",
    create: "创建", create_collection: "创建知识库", delete: "删除", refresh: "刷新",
    confirm_delete: "删除 {name}？此操作无法撤销。", deleted: "已删除 {name}。", created: "已创建 {name}。",
    no_collections: "还没有知识库。", no_collection: "请先选择或创建一个知识库。",
    drop_here: "把文件或文件夹拖到这里", choose_files: "选择文件", choose_folder: "选择文件夹",
    upload_to: "文件将上传到知识库 {name}。", uploading: "上传中", queued: "排队中", running: "索引中",
    succeeded: "完成", failed: "失败", job_summary: "{documents} 个文档，{chunks} 个分块", file: "文件", reason: "原因",
    files_n: "{n} 个文件", no_write: "此密钥不能写入 {name}。",
    query: "查询", mode: "模式", hybrid: "混合", dense: "向量（语义）", bm25: "BM25（关键词）",
    alpha: "α（向量权重）", top_k: "结果数", debug: "调试视图", go: "搜索", no_hits: "没有结果。",
    score: "得分", section: "章节", source: "来源", rank: "名次", timings: "耗时（毫秒）", stage: "阶段",
    legs: "各路检索", fused: "融合", hit: "结果",
    question: "问题", send: "提问", new_chat: "新对话", references: "参考来源",
    thinking: "正在回答…", you: "你", assistant: "智库", quote: "摘自来源原文",
    refused: "无法回答", best_passages: "找到的最相关段落", cited: "引用的段落",
    close: "关闭", open: "打开",
    "refusal.no_results": "知识库中没有与问题相关的内容。",
    "refusal.weak_retrieval": "找到的段落与问题相关性太弱，无法据此回答。",
    "refusal.off_topic": "找到的段落讲的是别的内容。",
    "refusal.model": "模型判断来源中没有答案。",
    "refusal.unsupported": "草拟的回答得不到来源支持，因此未显示。",
    "refusal.ungrounded": "草拟的回答没有引用任何来源，因此未显示。",
    "refusal.unknown": "来源不足以支持回答。",
    filter: "按元数据筛选", filter_help: "键=值，用逗号分隔（例如 lang=zh, year=2020）",
    apply: "应用", previous: "上一页", next: "下一页", title: "标题", doc_id: "文档 ID", metadata: "元数据",
    text: "正文", back: "返回", no_documents: "没有文档。", page: "从第 {from} 条起",
    key_help: "只保存在本标签页的会话存储中，以 Authorization: Bearer 发送。",
    save: "保存", clear: "清除", scope: "权限", scope_of: "此密钥：{collections} 上的 {scope} 权限。",
    open_access: "服务器未配置 API 密钥：本机可完全访问。",
    saved: "密钥已保存。", cleared: "密钥已清除。",
    "error.unauthorized": "需要 API 密钥：请在“API 密钥”页输入。",
    "error.forbidden": "此密钥无权执行该操作。", "error.network": "无法连接服务器。",
  },
};

const LANG_KEY = "zhiku.lang";

export function initialLang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && STRINGS[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current = initialLang();

export function lang() { return current; }

export function setLang(code) {
  current = STRINGS[code] ? code : "en";
  localStorage.setItem(LANG_KEY, current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
}

// A string in the current language, with {name} placeholders filled in.
export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

export function has(key) { return key in STRINGS.en; }
