// The demo shop page (/demo/chat): its texts come from the shared translation table; the widget
// is the one script tag in the page's head.
import { applyDocument } from './i18n.js';

applyDocument(document.documentElement.lang);
const snippet = document.getElementById('snippet');
if (snippet) snippet.textContent = `<script src="${location.origin}/widget.js" data-tenant="demo" async></script>`;
