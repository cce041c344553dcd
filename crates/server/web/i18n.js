// The one translation table of every Switchboard page (agent desktop, supervisor, chat widget,
// demo page), in English, Arabic and Persian, plus the Intl-based formatting of numbers, dates
// and durations. A string is a plain template with `{name}` placeholders, or an object of
// Intl.PluralRules categories (`one`, `two`, `few`, `many`, `other`, `zero`) chosen by `{n}`.
// Numbers in placeholders are formatted with the language's digits.

export const LANGS = {
  en: { name: 'English', dir: 'ltr' },
  ar: { name: 'العربية', dir: 'rtl' },
  fa: { name: 'فارسی', dir: 'rtl' },
};

const en = {
  'app.name': 'Switchboard',
  'app.agent': 'Agent desktop',
  'app.supervisor': 'Supervisor',
  'lang.label': 'Language',
  'login.title': 'Sign in',
  'login.username': 'Username',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.failed': 'Wrong username or password.',
  'login.blocked': 'Too many attempts. Try again in {s} seconds.',
  'login.need_agent': 'This account has no agent profile. Use the supervisor page instead.',
  'login.need_supervisor': 'This page needs a supervisor or admin account.',
  'logout': 'Sign out',
  'conn.open': 'Live',
  'conn.connecting': 'Reconnecting…',
  'conn.closed': 'Offline',
  'error.generic': 'Something went wrong: {message}',
  'state.label': 'My state',
  'state.available': 'Available',
  'state.break': 'On break',
  'state.offline': 'Offline',
  'state.busy': 'Busy',
  'activity.idle': 'Idle',
  'activity.busy': 'Busy',
  'activity.wrap_up': 'Wrap-up',
  'reason.label': 'Break reason',
  'reason.lunch': 'Lunch',
  'reason.coffee': 'Coffee',
  'reason.meeting': 'Meeting',
  'reason.training': 'Training',
  'reason.missed_offer': 'Missed an offer',
  'istate.flow': 'In a flow',
  'istate.queued': 'Waiting',
  'istate.offered': 'Offered',
  'istate.connected': 'Connected',
  'istate.wrap_up': 'Wrap-up',
  'istate.ended': 'Ended',
  'channel.voice': 'Voice',
  'channel.chat': 'Chat',
  'channel.email': 'Email',
  'channel.sms': 'SMS',
  'channel.whatsapp': 'WhatsApp',
  'channel.telegram': 'Telegram',
  'channel.messenger': 'Messenger',
  'channel.instagram': 'Instagram',
  'channel.video': 'Video',
  'channel.fax': 'Fax',
  'channel.task': 'Task',
  'disposition.resolved': 'Resolved',
  'disposition.follow_up': 'Follow-up',
  'disposition.escalated': 'Escalated',
  'disposition.no_action': 'No action',
  'disposition.withdrawn': 'Withdrawn',
  'disposition.cancelled': 'Cancelled',
  'disposition.abandoned': 'Abandoned',
  'agent.offers': 'Offers',
  'agent.no_offers': 'No offers right now.',
  'agent.offer_from': '{channel} · {queue}',
  'agent.expires_in': 'Expires in {s} s',
  'agent.accept': 'Accept',
  'agent.reject': 'Reject',
  'agent.new_offer': 'New offer: {subject}',
  'agent.work': 'My conversations',
  'agent.no_work': 'Nothing yet. Set yourself available to receive offers.',
  'agent.capacity': 'Chats {n} of {max}',
  'agent.pick': 'Choose a conversation on the left.',
  'agent.shortcuts': 'Shortcuts: A accept, R reject the focused offer, Alt+1…\u20609 switch conversations, Enter sends, Shift+Enter new line.',
  'agent.reply_placeholder': 'Write a reply… (Enter sends, Shift+Enter new line)',
  'agent.note_placeholder': 'Internal note, never shown to the customer…',
  'agent.send': 'Send',
  'agent.add_note': 'Add note',
  'agent.internal': 'Internal note',
  'agent.attach': 'Attach files',
  'agent.remove_file': 'Remove {name}',
  'agent.file_refused': '{name} was not attached: {message}',
  'agent.canned': 'Canned responses',
  'agent.canned_pick': 'Insert a canned response…',
  'agent.transfer': 'Transfer',
  'agent.transfer_to': 'Transfer to',
  'agent.transfer_queues': 'Queues',
  'agent.transfer_agents': 'Available colleagues',
  'agent.end': 'End',
  'agent.end_title': 'End with a disposition',
  'agent.disposition': 'Disposition',
  'agent.notes': 'Notes',
  'agent.cancel': 'Cancel',
  'agent.confirm_end': 'End conversation',
  'agent.confirm_transfer': 'Transfer',
  'agent.wrap_up': 'Wrap-up: the conversation has ended; finish your notes.',
  'agent.ended': 'This conversation has ended ({disposition}).',
  'agent.transferred': 'Transferred to {queue}.',
  'agent.close': 'Close',
  'agent.customer_left': '{name} left the chat. End it with a disposition.',
  'agent.subject': 'Subject',
  'agent.details': 'Details',
  'agent.queue': 'Queue',
  'agent.started': 'Started',
  'agent.waited': 'Waited',
  'agent.customer': 'Customer',
  'agent.contact_points': 'Contact points',
  'agent.history': 'Earlier interactions',
  'agent.no_history': 'No earlier interactions.',
  'agent.no_customer': 'No customer is linked to this interaction.',
  'agent.visitor': 'Visitor',
  'agent.you': 'You',
  'agent.typing': '{name} is typing…',
  'agent.unread': { one: '{n} unread message', other: '{n} unread messages' },
  'agent.new_message': 'New message from {name}',
  'agent.no_messages': 'No messages yet.',
  'agent.file_failed': 'The file could not be opened.',
  'agent.messages_unavailable': 'Messages are not available for this interaction.',
  'agent.current': 'This conversation',
  'agent.notes_label': 'Notes: {notes}',
  'canned.greeting': 'Hello! Thank you for contacting us. How can I help you?',
  'canned.checking': 'Let me check that for you, one moment please.',
  'canned.anything_else': 'Is there anything else I can help you with?',
  'canned.thanks': 'Thank you for contacting us. Have a great day!',
  'msg.customer': 'Customer',
  'msg.system': 'System',
  'msg.sending': 'Sending…',
  'msg.delivered': 'Delivered',
  'msg.read': 'Read',
  'msg.failed': 'Not sent',
  'msg.retry': 'Retry',
  'msg.internal': 'Internal note',
  'msg.window_open': 'Free text may be sent until {until}.',
  'msg.window_closed': 'The 24-hour window is closed: only approved templates may be sent.',
  'msg.opted_out': 'The customer opted out of messages here: replies are refused.',
  'msg.continued': 'Replies now go by {channel}.',
  'msg.log': 'Messages',
  'sup.queues': 'Queues',
  'sup.queue': 'Queue',
  'sup.waiting': 'Waiting',
  'sup.offered': 'Offered',
  'sup.longest_wait': 'Longest wait',
  'sup.est_wait': 'Estimated wait',
  'sup.agents_by_state': 'Agents',
  'sup.service_level': 'Service level',
  'sup.sl_target': 'target {percent} in {s} s',
  'sup.total': 'All queues',
  'sup.agents': 'Agents',
  'sup.agent': 'Agent',
  'sup.state': 'State',
  'sup.activity': 'Activity',
  'sup.load': 'Load',
  'sup.since': 'Since',
  'sup.active': 'Active conversations',
  'sup.no_active': 'No active conversations.',
  'sup.channel': 'Channel',
  'sup.customer': 'Customer',
  'sup.subject': 'Subject',
  'sup.open': 'Open',
  'sup.read_only': 'Read-only view',
  'sup.close': 'Close',
  'sup.updated': 'Updated {time}',
  'sup.none': '—',
  'w.launcher': 'Chat with us',
  'w.title': 'Chat with us',
  'w.minimize': 'Minimize chat',
  'w.intro': 'Hi! Ask us anything; we usually answer within a few minutes.',
  'w.prechat': 'Tell us who you are (optional) so we can help you faster.',
  'w.name': 'Name',
  'w.email': 'Email',
  'w.start': 'Start chat',
  'w.placeholder': 'Write a message…',
  'w.send': 'Send',
  'w.emoji': 'Emoji',
  'w.attach': 'Attach a file',
  'w.uploading': 'Sending {name}…',
  'w.error_file_too_large': 'That file is too large to send.',
  'w.error_file_type': 'Files of this type cannot be sent.',
  'w.error_file_empty': 'That file is empty.',
  'w.error_upload': 'The file could not be sent. Please try again.',
  'w.menu': 'More options',
  'w.connecting': 'Connecting…',
  'w.reconnecting': 'Connection lost. Reconnecting…',
  'w.queued': 'You are number {position} in line.',
  'w.queued_wait': 'You are number {position} in line, about {wait}.',
  'w.waiting': 'Waiting for the next agent…',
  'w.connected': 'You are chatting with {agent}.',
  'w.ended': 'This chat has ended. Thank you!',
  'w.new_chat': 'Start a new chat',
  'w.end_chat': 'End chat',
  'w.end_confirm': 'End this chat?',
  'w.yes': 'Yes, end it',
  'w.no': 'No',
  'w.transcript': 'Email me the transcript',
  'w.transcript_sent': 'We will send the transcript to {email}.',
  'w.transcript_send': 'Send',
  'w.typing': '{name} is typing…',
  'w.agent': 'Agent',
  'w.bot': 'Assistant',
  'w.flow': 'Our assistant is with you',
  'w.choices': 'Choices',
  'w.you': 'You',
  'w.unread': { one: '{n} new message', other: '{n} new messages' },
  'w.error_rate_limited': 'You are sending messages too fast. Please wait a moment.',
  'w.error_too_large': 'That message is too long.',
  'w.error': 'Something went wrong ({code}).',
  'w.powered': 'Powered by Switchboard',
  'demo.title': 'Nimbus Coffee: demo shop',
  'demo.brand': 'Nimbus Coffee',
  'demo.nav_shop': 'Shop',
  'demo.nav_orders': 'My orders',
  'demo.nav_help': 'Help',
  'demo.hero': 'Freshly roasted, delivered to your door',
  'demo.lead': 'This is a demo page. The chat bubble in the corner is the Switchboard widget, added with one script tag. Ask where your order is, and an agent answers from the agent desktop.',
  'demo.order_title': 'Order #1042',
  'demo.order_state': 'Shipped, arriving in 2 days',
  'demo.product1': 'Ethiopia Yirgacheffe, 250 g',
  'demo.product2': 'Colombia Huila, 1 kg',
  'demo.embed': 'Embed it on your site:',
  'demo.footer': 'A demo of Switchboard, the open-source contact center.',
};

const ar = {
  'app.name': 'سويتشبورد',
  'app.agent': 'مكتب الموظف',
  'app.supervisor': 'المشرف',
  'lang.label': 'اللغة',
  'login.title': 'تسجيل الدخول',
  'login.username': 'اسم المستخدم',
  'login.password': 'كلمة المرور',
  'login.submit': 'دخول',
  'login.failed': 'اسم المستخدم أو كلمة المرور غير صحيحة.',
  'login.blocked': 'محاولات كثيرة جدًا. حاول مجددًا بعد {s} ثانية.',
  'login.need_agent': 'لا يملك هذا الحساب ملف موظف. استخدم صفحة المشرف.',
  'login.need_supervisor': 'تحتاج هذه الصفحة إلى حساب مشرف أو مدير.',
  'logout': 'تسجيل الخروج',
  'conn.open': 'متصل',
  'conn.connecting': 'جارٍ إعادة الاتصال…',
  'conn.closed': 'غير متصل',
  'error.generic': 'حدث خطأ: {message}',
  'state.label': 'حالتي',
  'state.available': 'متاح',
  'state.break': 'في استراحة',
  'state.offline': 'غير متصل',
  'state.busy': 'مشغول',
  'activity.idle': 'خامل',
  'activity.busy': 'مشغول',
  'activity.wrap_up': 'إنهاء العمل',
  'reason.label': 'سبب الاستراحة',
  'reason.lunch': 'غداء',
  'reason.coffee': 'قهوة',
  'reason.meeting': 'اجتماع',
  'reason.training': 'تدريب',
  'reason.missed_offer': 'فاته عرض',
  'istate.flow': 'في مسار آلي',
  'istate.queued': 'في الانتظار',
  'istate.offered': 'معروض',
  'istate.connected': 'متصل',
  'istate.wrap_up': 'إنهاء العمل',
  'istate.ended': 'منتهٍ',
  'channel.voice': 'مكالمة',
  'channel.chat': 'دردشة',
  'channel.email': 'بريد إلكتروني',
  'channel.sms': 'رسالة نصية',
  'channel.whatsapp': 'واتساب',
  'channel.telegram': 'تيليجرام',
  'channel.messenger': 'ماسنجر',
  'channel.instagram': 'إنستغرام',
  'channel.video': 'فيديو',
  'channel.fax': 'فاكس',
  'channel.task': 'مهمة',
  'disposition.resolved': 'تم الحل',
  'disposition.follow_up': 'متابعة',
  'disposition.escalated': 'مُصعَّد',
  'disposition.no_action': 'لا إجراء',
  'disposition.withdrawn': 'مسحوب',
  'disposition.cancelled': 'ملغى',
  'disposition.abandoned': 'متروك',
  'agent.offers': 'العروض',
  'agent.no_offers': 'لا توجد عروض الآن.',
  'agent.offer_from': '{channel} · {queue}',
  'agent.expires_in': 'ينتهي خلال {s} ث',
  'agent.accept': 'قبول',
  'agent.reject': 'رفض',
  'agent.new_offer': 'عرض جديد: {subject}',
  'agent.work': 'محادثاتي',
  'agent.no_work': 'لا شيء بعد. اجعل حالتك «متاح» لتتلقى العروض.',
  'agent.capacity': 'المحادثات {n} من {max}',
  'agent.pick': 'اختر محادثة من القائمة.',
  'agent.shortcuts': 'اختصارات: \u2066A\u2069 للقبول، \u2066R\u2069 لرفض العرض المحدد، \u2066Alt+1…\u20609\u2069 للتنقل بين المحادثات، \u2066Enter\u2069 للإرسال، \u2066Shift+Enter\u2069 لسطر جديد.',
  'agent.reply_placeholder': 'اكتب ردًا… (\u2066Enter\u2069 للإرسال، \u2066Shift+Enter\u2069 لسطر جديد)',
  'agent.note_placeholder': 'ملاحظة داخلية لا يراها العميل…',
  'agent.send': 'إرسال',
  'agent.add_note': 'إضافة ملاحظة',
  'agent.internal': 'ملاحظة داخلية',
  'agent.attach': 'إرفاق ملفات',
  'agent.remove_file': 'إزالة {name}',
  'agent.file_refused': 'لم يُرفق {name}: {message}',
  'agent.canned': 'ردود جاهزة',
  'agent.canned_pick': 'أدرج ردًا جاهزًا…',
  'agent.transfer': 'تحويل',
  'agent.transfer_to': 'تحويل إلى',
  'agent.transfer_queues': 'الطوابير',
  'agent.transfer_agents': 'زملاء متاحون',
  'agent.end': 'إنهاء',
  'agent.end_title': 'الإنهاء مع نتيجة',
  'agent.disposition': 'النتيجة',
  'agent.notes': 'ملاحظات',
  'agent.cancel': 'إلغاء',
  'agent.confirm_end': 'إنهاء المحادثة',
  'agent.confirm_transfer': 'تحويل',
  'agent.wrap_up': 'إنهاء العمل: انتهت المحادثة؛ أكمل ملاحظاتك.',
  'agent.ended': 'انتهت هذه المحادثة ({disposition}).',
  'agent.transferred': 'حُوِّلت إلى {queue}.',
  'agent.close': 'إغلاق',
  'agent.customer_left': 'غادر {name} الدردشة. أنهِها مع نتيجة.',
  'agent.subject': 'الموضوع',
  'agent.details': 'التفاصيل',
  'agent.queue': 'الطابور',
  'agent.started': 'البداية',
  'agent.waited': 'مدة الانتظار',
  'agent.customer': 'العميل',
  'agent.contact_points': 'وسائل الاتصال',
  'agent.history': 'التفاعلات السابقة',
  'agent.no_history': 'لا توجد تفاعلات سابقة.',
  'agent.no_customer': 'لا يوجد عميل مرتبط بهذا التفاعل.',
  'agent.visitor': 'زائر',
  'agent.you': 'أنت',
  'agent.typing': '{name} يكتب…',
  'agent.unread': { zero: 'لا رسائل غير مقروءة', one: 'رسالة واحدة غير مقروءة', two: 'رسالتان غير مقروءتين', few: '{n} رسائل غير مقروءة', many: '{n} رسالة غير مقروءة', other: '{n} رسالة غير مقروءة' },
  'agent.new_message': 'رسالة جديدة من {name}',
  'agent.no_messages': 'لا توجد رسائل بعد.',
  'agent.file_failed': 'تعذّر فتح الملف.',
  'agent.messages_unavailable': 'الرسائل غير متاحة لهذا التفاعل.',
  'agent.current': 'هذه المحادثة',
  'agent.notes_label': 'ملاحظات: {notes}',
  'canned.greeting': 'مرحبًا! شكرًا لتواصلك معنا. كيف يمكنني مساعدتك؟',
  'canned.checking': 'دعني أتحقق من ذلك، لحظة من فضلك.',
  'canned.anything_else': 'هل هناك شيء آخر يمكنني مساعدتك فيه؟',
  'canned.thanks': 'شكرًا لتواصلك معنا. نتمنى لك يومًا سعيدًا!',
  'msg.customer': 'العميل',
  'msg.system': 'النظام',
  'msg.sending': 'جارٍ الإرسال…',
  'msg.delivered': 'تم التسليم',
  'msg.read': 'مقروءة',
  'msg.failed': 'لم تُرسل',
  'msg.retry': 'إعادة المحاولة',
  'msg.internal': 'ملاحظة داخلية',
  'msg.window_open': 'يمكن إرسال نص حر حتى {until}.',
  'msg.window_closed': 'نافذة الـ 24 ساعة مغلقة: يمكن إرسال القوالب المعتمدة فقط.',
  'msg.opted_out': 'ألغى العميل الاشتراك في الرسائل هنا: الردود مرفوضة.',
  'msg.continued': 'الردود تُرسل الآن عبر {channel}.',
  'msg.log': 'الرسائل',
  'sup.queues': 'الطوابير',
  'sup.queue': 'الطابور',
  'sup.waiting': 'في الانتظار',
  'sup.offered': 'معروضة',
  'sup.longest_wait': 'أطول انتظار',
  'sup.est_wait': 'الانتظار المتوقع',
  'sup.agents_by_state': 'الموظفون',
  'sup.service_level': 'مستوى الخدمة',
  'sup.sl_target': 'الهدف {percent} خلال {s} ث',
  'sup.total': 'كل الطوابير',
  'sup.agents': 'الموظفون',
  'sup.agent': 'الموظف',
  'sup.state': 'الحالة',
  'sup.activity': 'النشاط',
  'sup.load': 'الحمل',
  'sup.since': 'منذ',
  'sup.active': 'المحادثات الجارية',
  'sup.no_active': 'لا توجد محادثات جارية.',
  'sup.channel': 'القناة',
  'sup.customer': 'العميل',
  'sup.subject': 'الموضوع',
  'sup.open': 'فتح',
  'sup.read_only': 'عرض للقراءة فقط',
  'sup.close': 'إغلاق',
  'sup.updated': 'آخر تحديث {time}',
  'sup.none': '—',
  'w.launcher': 'تحدث معنا',
  'w.title': 'تحدث معنا',
  'w.minimize': 'تصغير الدردشة',
  'w.intro': 'مرحبًا! اسألنا أي شيء؛ نرد عادةً خلال دقائق.',
  'w.prechat': 'عرّفنا بنفسك (اختياري) لنساعدك بشكل أسرع.',
  'w.name': 'الاسم',
  'w.email': 'البريد الإلكتروني',
  'w.start': 'ابدأ الدردشة',
  'w.placeholder': 'اكتب رسالة…',
  'w.send': 'إرسال',
  'w.emoji': 'رموز تعبيرية',
  'w.attach': 'إرفاق ملف',
  'w.uploading': 'جارٍ إرسال {name}…',
  'w.error_file_too_large': 'هذا الملف أكبر من أن يُرسل.',
  'w.error_file_type': 'لا يمكن إرسال ملفات من هذا النوع.',
  'w.error_file_empty': 'هذا الملف فارغ.',
  'w.error_upload': 'تعذّر إرسال الملف. يرجى المحاولة مرة أخرى.',
  'w.menu': 'خيارات أخرى',
  'w.connecting': 'جارٍ الاتصال…',
  'w.reconnecting': 'انقطع الاتصال. جارٍ إعادة الاتصال…',
  'w.queued': 'ترتيبك {position} في الطابور.',
  'w.queued_wait': 'ترتيبك {position} في الطابور، خلال {wait} تقريبًا.',
  'w.waiting': 'بانتظار أول موظف متاح…',
  'w.connected': 'أنت تتحدث مع {agent}.',
  'w.ended': 'انتهت هذه الدردشة. شكرًا لك!',
  'w.new_chat': 'ابدأ دردشة جديدة',
  'w.end_chat': 'إنهاء الدردشة',
  'w.end_confirm': 'هل تريد إنهاء هذه الدردشة؟',
  'w.yes': 'نعم، أنهِها',
  'w.no': 'لا',
  'w.transcript': 'أرسل لي نص المحادثة بالبريد',
  'w.transcript_sent': 'سنرسل نص المحادثة إلى {email}.',
  'w.transcript_send': 'إرسال',
  'w.typing': '{name} يكتب…',
  'w.agent': 'الموظف',
  'w.bot': 'المساعد',
  'w.flow': 'مساعدنا معك',
  'w.choices': 'الخيارات',
  'w.you': 'أنت',
  'w.unread': { zero: 'لا رسائل جديدة', one: 'رسالة جديدة', two: 'رسالتان جديدتان', few: '{n} رسائل جديدة', many: '{n} رسالة جديدة', other: '{n} رسالة جديدة' },
  'w.error_rate_limited': 'أنت ترسل الرسائل بسرعة كبيرة. انتظر قليلًا من فضلك.',
  'w.error_too_large': 'هذه الرسالة طويلة جدًا.',
  'w.error': 'حدث خطأ ({code}).',
  'w.powered': 'بدعم من سويتشبورد',
  'demo.title': 'قهوة نيمبس: متجر تجريبي',
  'demo.brand': 'قهوة نيمبس',
  'demo.nav_shop': 'المتجر',
  'demo.nav_orders': 'طلباتي',
  'demo.nav_help': 'المساعدة',
  'demo.hero': 'قهوة محمصة طازجة تصل إلى بابك',
  'demo.lead': 'هذه صفحة تجريبية. فقاعة الدردشة في الزاوية هي أداة سويتشبورد، أُضيفت بوسم سكربت واحد. اسأل عن طلبك، وسيرد عليك موظف من مكتب الموظف.',
  'demo.order_title': 'الطلب رقم 1042',
  'demo.order_state': 'تم الشحن، يصل خلال يومين',
  'demo.product1': 'إثيوبيا يرغاتشيف، 250 غ',
  'demo.product2': 'كولومبيا هويلا، 1 كغ',
  'demo.embed': 'أضفها إلى موقعك:',
  'demo.footer': 'عرض تجريبي لسويتشبورد، مركز الاتصال مفتوح المصدر.',
};

const fa = {
  'app.name': 'سوییچبورد',
  'app.agent': 'میز کار کارشناس',
  'app.supervisor': 'سرپرست',
  'lang.label': 'زبان',
  'login.title': 'ورود',
  'login.username': 'نام کاربری',
  'login.password': 'گذرواژه',
  'login.submit': 'ورود',
  'login.failed': 'نام کاربری یا گذرواژه نادرست است.',
  'login.blocked': 'تلاش‌های بیش از حد. {s} ثانیه دیگر دوباره امتحان کنید.',
  'login.need_agent': 'این حساب نمایهٔ کارشناس ندارد. از صفحهٔ سرپرست استفاده کنید.',
  'login.need_supervisor': 'این صفحه به حساب سرپرست یا مدیر نیاز دارد.',
  'logout': 'خروج',
  'conn.open': 'برخط',
  'conn.connecting': 'در حال اتصال دوباره…',
  'conn.closed': 'قطع',
  'error.generic': 'خطایی رخ داد: {message}',
  'state.label': 'وضعیت من',
  'state.available': 'آماده',
  'state.break': 'در استراحت',
  'state.offline': 'آفلاین',
  'state.busy': 'مشغول',
  'activity.idle': 'بیکار',
  'activity.busy': 'مشغول',
  'activity.wrap_up': 'جمع‌بندی',
  'reason.label': 'دلیل استراحت',
  'reason.lunch': 'ناهار',
  'reason.coffee': 'قهوه',
  'reason.meeting': 'جلسه',
  'reason.training': 'آموزش',
  'reason.missed_offer': 'پیشنهادی از دست رفت',
  'istate.flow': 'در جریان خودکار',
  'istate.queued': 'در انتظار',
  'istate.offered': 'پیشنهادشده',
  'istate.connected': 'متصل',
  'istate.wrap_up': 'جمع‌بندی',
  'istate.ended': 'پایان‌یافته',
  'channel.voice': 'تماس',
  'channel.chat': 'گفتگو',
  'channel.email': 'ایمیل',
  'channel.sms': 'پیامک',
  'channel.whatsapp': 'واتس‌اپ',
  'channel.telegram': 'تلگرام',
  'channel.messenger': 'مسنجر',
  'channel.instagram': 'اینستاگرام',
  'channel.video': 'ویدیو',
  'channel.fax': 'فکس',
  'channel.task': 'وظیفه',
  'disposition.resolved': 'حل شد',
  'disposition.follow_up': 'پیگیری',
  'disposition.escalated': 'ارجاع به سطح بالاتر',
  'disposition.no_action': 'بدون اقدام',
  'disposition.withdrawn': 'پس گرفته شد',
  'disposition.cancelled': 'لغو شد',
  'disposition.abandoned': 'رها شد',
  'agent.offers': 'پیشنهادها',
  'agent.no_offers': 'فعلاً پیشنهادی نیست.',
  'agent.offer_from': '{channel} · {queue}',
  'agent.expires_in': '{s} ثانیه مانده',
  'agent.accept': 'پذیرفتن',
  'agent.reject': 'رد کردن',
  'agent.new_offer': 'پیشنهاد تازه: {subject}',
  'agent.work': 'گفتگوهای من',
  'agent.no_work': 'هنوز چیزی نیست. وضعیت خود را «آماده» کنید تا پیشنهاد بگیرید.',
  'agent.capacity': 'گفتگوها {n} از {max}',
  'agent.pick': 'یک گفتگو را از فهرست انتخاب کنید.',
  'agent.shortcuts': 'میان‌برها: \u2066A\u2069 پذیرفتن، \u2066R\u2069 رد پیشنهاد انتخاب‌شده، \u2066Alt+1…\u20609\u2069 جابه‌جایی میان گفتگوها، \u2066Enter\u2069 ارسال، \u2066Shift+Enter\u2069 خط تازه.',
  'agent.reply_placeholder': 'پاسخ بنویسید… (\u2066Enter\u2069 ارسال، \u2066Shift+Enter\u2069 خط تازه)',
  'agent.note_placeholder': 'یادداشت داخلی، هرگز به مشتری نشان داده نمی‌شود…',
  'agent.send': 'ارسال',
  'agent.add_note': 'افزودن یادداشت',
  'agent.internal': 'یادداشت داخلی',
  'agent.attach': 'پیوست فایل',
  'agent.remove_file': 'حذف {name}',
  'agent.file_refused': '{name} پیوست نشد: {message}',
  'agent.canned': 'پاسخ‌های آماده',
  'agent.canned_pick': 'درج پاسخ آماده…',
  'agent.transfer': 'انتقال',
  'agent.transfer_to': 'انتقال به',
  'agent.transfer_queues': 'صف‌ها',
  'agent.transfer_agents': 'همکاران در دسترس',
  'agent.end': 'پایان',
  'agent.end_title': 'پایان با نتیجه',
  'agent.disposition': 'نتیجه',
  'agent.notes': 'یادداشت‌ها',
  'agent.cancel': 'انصراف',
  'agent.confirm_end': 'پایان گفتگو',
  'agent.confirm_transfer': 'انتقال',
  'agent.wrap_up': 'جمع‌بندی: گفتگو پایان یافت؛ یادداشت‌هایتان را کامل کنید.',
  'agent.ended': 'این گفتگو پایان یافت ({disposition}).',
  'agent.transferred': 'به {queue} منتقل شد.',
  'agent.close': 'بستن',
  'agent.customer_left': '{name} گفتگو را ترک کرد. آن را با یک نتیجه پایان دهید.',
  'agent.subject': 'موضوع',
  'agent.details': 'جزئیات',
  'agent.queue': 'صف',
  'agent.started': 'آغاز',
  'agent.waited': 'مدت انتظار',
  'agent.customer': 'مشتری',
  'agent.contact_points': 'راه‌های تماس',
  'agent.history': 'تعامل‌های پیشین',
  'agent.no_history': 'تعامل پیشینی نیست.',
  'agent.no_customer': 'هیچ مشتری‌ای به این تعامل پیوند ندارد.',
  'agent.visitor': 'بازدیدکننده',
  'agent.you': 'شما',
  'agent.typing': '{name} در حال نوشتن است…',
  'agent.unread': { one: '{n} پیام خوانده‌نشده', other: '{n} پیام خوانده‌نشده' },
  'agent.new_message': 'پیام تازه از {name}',
  'agent.no_messages': 'هنوز پیامی نیست.',
  'agent.file_failed': 'فایل باز نشد.',
  'agent.messages_unavailable': 'پیام‌های این تعامل در دسترس نیست.',
  'agent.current': 'همین گفتگو',
  'agent.notes_label': 'یادداشت‌ها: {notes}',
  'canned.greeting': 'سلام! از تماس شما سپاسگزاریم. چطور می‌توانم کمکتان کنم؟',
  'canned.checking': 'اجازه بدهید بررسی کنم، لطفاً کمی صبر کنید.',
  'canned.anything_else': 'کار دیگری هست که بتوانم برایتان انجام دهم؟',
  'canned.thanks': 'از تماس شما سپاسگزاریم. روز خوبی داشته باشید!',
  'msg.customer': 'مشتری',
  'msg.system': 'سامانه',
  'msg.sending': 'در حال ارسال…',
  'msg.delivered': 'تحویل شد',
  'msg.read': 'خوانده شد',
  'msg.failed': 'ارسال نشد',
  'msg.retry': 'تلاش دوباره',
  'msg.internal': 'یادداشت داخلی',
  'msg.window_open': 'تا {until} می‌توان متن آزاد فرستاد.',
  'msg.window_closed': 'پنجرهٔ ۲۴ ساعته بسته است: فقط قالب‌های تأییدشده را می‌توان فرستاد.',
  'msg.opted_out': 'مشتری اشتراک پیام‌ها را در اینجا لغو کرده است: پاسخ‌ها رد می‌شوند.',
  'msg.continued': 'پاسخ‌ها اکنون از طریق {channel} فرستاده می‌شوند.',
  'msg.log': 'پیام‌ها',
  'sup.queues': 'صف‌ها',
  'sup.queue': 'صف',
  'sup.waiting': 'در انتظار',
  'sup.offered': 'پیشنهادشده',
  'sup.longest_wait': 'طولانی‌ترین انتظار',
  'sup.est_wait': 'انتظار تخمینی',
  'sup.agents_by_state': 'کارشناسان',
  'sup.service_level': 'سطح خدمت',
  'sup.sl_target': 'هدف {percent} در {s} ثانیه',
  'sup.total': 'همهٔ صف‌ها',
  'sup.agents': 'کارشناسان',
  'sup.agent': 'کارشناس',
  'sup.state': 'وضعیت',
  'sup.activity': 'فعالیت',
  'sup.load': 'بار کاری',
  'sup.since': 'از',
  'sup.active': 'گفتگوهای جاری',
  'sup.no_active': 'گفتگوی جاری‌ای نیست.',
  'sup.channel': 'کانال',
  'sup.customer': 'مشتری',
  'sup.subject': 'موضوع',
  'sup.open': 'باز کردن',
  'sup.read_only': 'نمای فقط‌خواندنی',
  'sup.close': 'بستن',
  'sup.updated': 'به‌روزشده {time}',
  'sup.none': '—',
  'w.launcher': 'با ما گفتگو کنید',
  'w.title': 'با ما گفتگو کنید',
  'w.minimize': 'کوچک کردن گفتگو',
  'w.intro': 'سلام! هر سؤالی دارید بپرسید؛ معمولاً در چند دقیقه پاسخ می‌دهیم.',
  'w.prechat': 'خودتان را معرفی کنید (اختیاری) تا سریع‌تر کمکتان کنیم.',
  'w.name': 'نام',
  'w.email': 'ایمیل',
  'w.start': 'شروع گفتگو',
  'w.placeholder': 'پیامی بنویسید…',
  'w.send': 'ارسال',
  'w.emoji': 'شکلک',
  'w.attach': 'پیوست فایل',
  'w.uploading': 'در حال ارسال {name}…',
  'w.error_file_too_large': 'این فایل برای ارسال بیش از حد بزرگ است.',
  'w.error_file_type': 'فایل‌هایی از این نوع قابل ارسال نیستند.',
  'w.error_file_empty': 'این فایل خالی است.',
  'w.error_upload': 'فایل ارسال نشد. لطفاً دوباره تلاش کنید.',
  'w.menu': 'گزینه‌های بیشتر',
  'w.connecting': 'در حال اتصال…',
  'w.reconnecting': 'اتصال قطع شد. در حال اتصال دوباره…',
  'w.queued': 'نفر {position} در صف هستید.',
  'w.queued_wait': 'نفر {position} در صف هستید، حدود {wait}.',
  'w.waiting': 'در انتظار نخستین کارشناس آزاد…',
  'w.connected': 'در حال گفتگو با {agent} هستید.',
  'w.ended': 'این گفتگو پایان یافت. سپاسگزاریم!',
  'w.new_chat': 'شروع گفتگوی تازه',
  'w.end_chat': 'پایان گفتگو',
  'w.end_confirm': 'این گفتگو پایان یابد؟',
  'w.yes': 'بله، پایان',
  'w.no': 'نه',
  'w.transcript': 'متن گفتگو را برایم ایمیل کنید',
  'w.transcript_sent': 'متن گفتگو به {email} فرستاده می‌شود.',
  'w.transcript_send': 'ارسال',
  'w.typing': '{name} در حال نوشتن است…',
  'w.agent': 'کارشناس',
  'w.bot': 'دستیار',
  'w.flow': 'دستیار ما همراه شماست',
  'w.choices': 'گزینه‌ها',
  'w.you': 'شما',
  'w.unread': { one: '{n} پیام تازه', other: '{n} پیام تازه' },
  'w.error_rate_limited': 'پیام‌ها را خیلی سریع می‌فرستید. لطفاً کمی صبر کنید.',
  'w.error_too_large': 'این پیام بیش از حد طولانی است.',
  'w.error': 'خطایی رخ داد ({code}).',
  'w.powered': 'با پشتیبانی سوییچبورد',
  'demo.title': 'قهوهٔ نیمبوس: فروشگاه نمایشی',
  'demo.brand': 'قهوهٔ نیمبوس',
  'demo.nav_shop': 'فروشگاه',
  'demo.nav_orders': 'سفارش‌های من',
  'demo.nav_help': 'راهنما',
  'demo.hero': 'قهوهٔ تازه‌برشته، درِ خانهٔ شما',
  'demo.lead': 'این یک صفحهٔ نمایشی است. حباب گفتگو در گوشه، ابزارک سوییچبورد است که با یک تگ اسکریپت افزوده شده. بپرسید سفارشتان کجاست تا کارشناسی از میز کار پاسخ دهد.',
  'demo.order_title': 'سفارش شمارهٔ ۱۰۴۲',
  'demo.order_state': 'ارسال شد، تا دو روز دیگر می‌رسد',
  'demo.product1': 'اتیوپی یرگاچفه، ۲۵۰ گرم',
  'demo.product2': 'کلمبیا هوئیلا، ۱ کیلوگرم',
  'demo.embed': 'آن را در سایت خود بگذارید:',
  'demo.footer': 'نمایشی از سوییچبورد، مرکز تماس متن‌باز.',
};

const TABLE = { en, ar, fa };

let current = 'en';

/** The table of a language (for tests and tools). */
export function table(lang) {
  return TABLE[lang];
}

/** The first of `candidates` (language tags like `fa-IR`) that the table has; `en` otherwise. */
export function pickLang(...candidates) {
  for (const c of candidates) {
    if (!c) continue;
    const base = String(c).toLowerCase().split(/[-_]/)[0];
    if (TABLE[base]) return base;
  }
  return 'en';
}

/** Sets the language of `t` and the formatters. */
export function setLang(lang) {
  current = TABLE[lang] ? lang : 'en';
  return current;
}

/** The current language. */
export function getLang() {
  return current;
}

/** `ltr` or `rtl` for a language (default: the current one). */
export function dirOf(lang = current) {
  return (LANGS[lang] || LANGS.en).dir;
}

/** Formats a number with the language's digits and separators. */
export function fmtNumber(n, opts = {}, lang = current) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '';
  return new Intl.NumberFormat(lang, opts).format(n);
}

/** A share (0..1) as a percentage. */
export function fmtPercent(v, lang = current) {
  return fmtNumber(v, { style: 'percent', maximumFractionDigits: 0 }, lang);
}

/** Seconds as `m:ss` or `h:mm:ss`, with the language's digits. */
export function fmtClock(seconds, lang = current) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (x) => fmtNumber(x, { minimumIntegerDigits: 2, useGrouping: false }, lang);
  const one = (x) => fmtNumber(x, { useGrouping: false }, lang);
  return h > 0 ? `${one(h)}:${two(m)}:${two(s % 60)}` : `${one(m)}:${two(s % 60)}`;
}

/** Seconds as words in the language: `3 minutes`, `45 seconds`. */
export function fmtDuration(seconds, lang = current) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return fmtNumber(s, { style: 'unit', unit: 'second', unitDisplay: 'long' }, lang);
  const m = Math.round(s / 60);
  if (m < 60) return fmtNumber(m, { style: 'unit', unit: 'minute', unitDisplay: 'long' }, lang);
  return fmtNumber(Math.round(m / 6) / 10, { style: 'unit', unit: 'hour', unitDisplay: 'long' }, lang);
}

function toDate(v) {
  return v instanceof Date ? v : new Date(v);
}

/** A date and time (`Nov 25, 2026, 3:30 PM`), in the language's calendar and digits. */
export function fmtDateTime(v, lang = current) {
  if (!v) return '';
  return new Intl.DateTimeFormat(lang, { dateStyle: 'medium', timeStyle: 'short' }).format(toDate(v));
}

/** A time of day (`3:30 PM`). */
export function fmtTime(v, lang = current) {
  if (!v) return '';
  return new Intl.DateTimeFormat(lang, { timeStyle: 'short' }).format(toDate(v));
}

/** When a message was written: the time of day for today, else the date and time. */
export function fmtWhen(v, lang = current, now = new Date()) {
  if (!v) return '';
  const d = toDate(v);
  return d.toDateString() === now.toDateString() ? fmtTime(d, lang) : fmtDateTime(d, lang);
}

/** A file size (`12 kB`, `3.4 MB`) with the language's digits and units. */
export function fmtBytes(n, lang = current) {
  const b = Math.max(0, Number(n) || 0);
  if (b < 1000) return fmtNumber(b, { style: 'unit', unit: 'byte', unitDisplay: 'short' }, lang);
  if (b < 1e6) return fmtNumber(b / 1e3, { style: 'unit', unit: 'kilobyte', unitDisplay: 'short', maximumFractionDigits: 0 }, lang);
  return fmtNumber(b / 1e6, { style: 'unit', unit: 'megabyte', unitDisplay: 'short', maximumFractionDigits: 1 }, lang);
}

/** A list (`a, b and c`). */
export function fmtList(items, lang = current) {
  return new Intl.ListFormat(lang, { style: 'short', type: 'conjunction' }).format(items);
}

/**
 * The text of `key` in the current language (English, then the key itself, when missing), with
 * `{name}` placeholders filled from `params`; numbers are formatted for the language.
 */
export function t(key, params = {}, lang = current) {
  let s = (TABLE[lang] && TABLE[lang][key]) ?? en[key];
  if (s === undefined) return key;
  if (typeof s === 'object') {
    const n = Number(params.n ?? 0);
    const cat = new Intl.PluralRules(lang).select(n);
    s = s[n === 0 && s.zero ? 'zero' : cat] ?? s.other;
  }
  return s.replace(/\{(\w+)\}/g, (m, name) => {
    const v = params[name];
    if (v === undefined || v === null) return m;
    return typeof v === 'number' ? fmtNumber(v, {}, lang) : String(v);
  });
}

/** `t` for an open set of values (`disposition.X`, `reason.X`): the raw value when unknown. */
export function tValue(prefix, value, lang = current) {
  if (value === null || value === undefined || value === '') return '';
  const key = `${prefix}.${value}`;
  const s = t(key, {}, lang);
  return s === key ? String(value) : s;
}

/**
 * Translates the elements under `root` marked with `data-i18n` (text), `data-i18n-placeholder`,
 * `data-i18n-title` and `data-i18n-aria-label`.
 */
export function translateTree(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [attr, data] of [
    ['placeholder', 'i18nPlaceholder'],
    ['title', 'i18nTitle'],
    ['aria-label', 'i18nAriaLabel'],
  ]) {
    for (const el of root.querySelectorAll(`[data-${attr === 'aria-label' ? 'i18n-aria-label' : 'i18n-' + attr}]`)) {
      el.setAttribute(attr, t(el.dataset[data]));
    }
  }
}

/** Sets `lang` and `dir` of the document and translates it. */
export function applyDocument(lang, doc = document) {
  setLang(lang);
  doc.documentElement.lang = current;
  doc.documentElement.dir = dirOf(current);
  translateTree(doc);
  const title = doc.querySelector('meta[name="sb-title"]');
  if (title) doc.title = t(title.content);
}
