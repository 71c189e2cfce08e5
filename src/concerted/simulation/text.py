"""Synthetic post text for the simulator: everyday posts, propaganda, critics, minority
voices, mass-report calls and boasts, in English, Urdu, Hindi and romanised Urdu.

Detectors match on text (copy-paste, shared links, hashtags), so the simulator needs text
whose statistics look natural: real words in real scripts, drawn with Zipf-like
frequencies, and template-built campaign messages shaped like those in takedown reports.
Everything is drawn from a ``numpy.random.Generator`` passed in, so a seed fixes the text.
The bulk functions draw word indices with numpy and cut one joined string, because the
simulator asks for millions of posts.

>>> rng = np.random.default_rng(7)
>>> texts = organic_texts(rng, ["en", "ur", "hi", "ur-Latn"])
>>> len(texts)
4
>>> edit_text(rng, "yeh hamara mulk hai", 0.0)
'yeh hamara mulk hai'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "LANGUAGES",
    "NEWS_DOMAINS",
    "OPERATION_DOMAINS",
    "REPORT_REASONS",
    "boast_text",
    "critic_texts",
    "edit_text",
    "handles",
    "hashtags",
    "minority_texts",
    "mobilisation_text",
    "organic_texts",
    "person_names",
    "talking_points",
    "url_paths",
]

LANGUAGES: tuple[str, ...] = ("en", "ur", "hi", "ur-Latn")

REPORT_REASONS: tuple[str, ...] = (
    "spam", "hate_speech", "harassment", "violence", "nudity", "false_information",
    "terrorism", "impersonation", "fake_account", "blasphemy", "other",
)  # fmt: skip

#: Real domains people share: Pakistani, Indian and international news, video, social.
NEWS_DOMAINS: tuple[str, ...] = (
    "dawn.com", "geo.tv", "thenews.com.pk", "tribune.com.pk", "arynews.tv", "samaa.tv",
    "dunyanews.tv", "express.pk", "jang.com.pk", "nation.com.pk", "brecorder.com",
    "thefridaytimes.com", "bbc.co.uk", "bbc.com", "reuters.com", "aljazeera.com", "cnn.com",
    "nytimes.com", "theguardian.com", "washingtonpost.com", "apnews.com", "dw.com",
    "voanews.com", "thehindu.com", "hindustantimes.com", "indianexpress.com", "ndtv.com",
    "timesofindia.indiatimes.com", "indiatoday.in", "scroll.in", "thewire.in",
    "espncricinfo.com", "cricbuzz.com", "youtube.com", "youtu.be", "facebook.com",
    "twitter.com", "instagram.com", "tiktok.com", "dailymotion.com", "wikipedia.org",
    "medium.com", "blogspot.com",
)  # fmt: skip

#: Fictional propaganda sites; ``.example`` is reserved (RFC 2606), so none can exist.
OPERATION_DOMAINS: tuple[str, ...] = (
    "defence-watch-pk.example", "pak-truth-today.example", "green-crescent-news.example",
    "watan-first.example", "sentinel-times-pk.example", "daily-qaum.example",
    "sarhad-post.example", "national-narrative.example", "patriot-lens.example",
    "pak-pride-media.example", "qaumi-awaz-news.example", "shaheen-bulletin.example",
)  # fmt: skip

# Vocabularies are listed roughly by frequency: the rank is the Zipf rank.
_WORDS: dict[str, str] = {
    "en": """
i the to a and is you it my of in this for so that on we be with just are me have not all
our what your at but they good today was will can do no it's don't one like get time now
know love really people day very going got too see new need think want about more how great
best happy go back still home life family friends work out night morning thanks please yes
weather rain hot cold summer winter heat match cricket team win won lost runs wicket batting
bowling final series players score food biryani chai tea dinner lunch breakfast mango mother
father brother sister kids wedding prices petrol sugar flour expensive market shop bill
electricity government elections vote news country city traffic road bus train travel trip
holiday eid festival ramadan prayers mosque blessed exam exams results university school class
teacher study job office salary interview boss weekend week year yesterday tomorrow beautiful
proud old big little always never everyone house phone internet movie song music watch hope
lol wow first last next god health doctor hospital water garden season books friday sunday
delicious tired busy sleep coffee shopping clothes money cheap rent fuel gas power cut
""",
    "ur": """
کے میں کی ہے اور سے کا کو یہ نہیں ہیں تو بھی ہم پر آج کہ وہ جو تھا ایک کیا اب بہت سب ہو
گا مجھے ہمارا ہماری اپنے لیے ساتھ بس کچھ کل پھر ابھی یار جی ہاں اللہ شکر دعا دن رات صبح شام
وقت سال ہفتہ زندگی گھر لوگ دوست خاندان امی ابو بھائی بہن بچے شادی کام دفتر نوکری تنخواہ
انٹرویو کرکٹ میچ ٹیم جیت ہار کھلاڑی وکٹ رنز فائنل اسکور کھانا بریانی چائے ناشتہ آم موسم بارش
گرمی سردی ٹھنڈ دھوپ قیمت مہنگائی پٹرول چینی آٹا بازار دکان بجلی بل گیس حکومت الیکشن ووٹ خبر
ملک شہر لاہور کراچی پشاور سڑک ٹریفک ٹرین سفر چھٹی عید رمضان نماز مسجد جمعہ مبارک امتحان
نتیجہ یونیورسٹی اسکول کلاس استاد پڑھائی کتاب فون انٹرنیٹ فلم گانا ڈرامہ دیکھو دیکھا پتہ
چاہیے جانا آنا رہا رہی گئے کرنا کریں شکریہ واہ اچھا اچھی بڑا نیا پرانا خوش خوبصورت پیارا
مزہ دل صحت ڈاکٹر ہسپتال پانی مزیدار تھکا نیند پیسے کرایہ کپڑے
""",
    "hi": """
के में की है और से का को यह नहीं हैं तो भी हम पर आज कि वह जो था एक क्या अब बहुत सब हो
गया मुझे हमारा हमारी अपने लिए साथ बस कुछ कल फिर अभी यार जी हाँ भगवान शुक्र दिन रात सुबह
शाम समय साल हफ्ता ज़िंदगी घर लोग दोस्त परिवार माँ पापा भाई बहन बच्चे शादी काम ऑफिस
नौकरी सैलरी इंटरव्यू क्रिकेट मैच टीम जीत हार खिलाड़ी विकेट रन फाइनल स्कोर खाना बिरयानी
चाय नाश्ता आम मौसम बारिश गर्मी सर्दी ठंड धूप दाम महंगाई पेट्रोल चीनी आटा बाज़ार दुकान
बिजली बिल गैस सरकार चुनाव वोट खबर देश शहर दिल्ली मुंबई लखनऊ सड़क ट्रैफिक ट्रेन यात्रा
छुट्टी दिवाली होली ईद त्योहार पूजा मंदिर परीक्षा रिजल्ट कॉलेज स्कूल क्लास टीचर पढ़ाई
किताब फोन इंटरनेट फिल्म गाना सीरियल देखो देखा पता चाहिए जाना आना रहा रही गए करना करें
धन्यवाद वाह अच्छा अच्छी बड़ा नया पुराना खुश सुंदर प्यारा मज़ा दिल सेहत डॉक्टर अस्पताल
पानी स्वादिष्ट थका नींद पैसे किराया कपड़े
""",
    "ur-Latn": """
ke mein ki hai aur se ka ko yeh nahi hain to bhi hum par aaj woh jo tha aik kya ab bohat sab
ho ga mujhe hamara hamari apne liye sath bas kuch kal phir abhi yaar ji haan allah shukar dua
din raat subah shaam waqt saal hafta zindagi ghar log dost khandan ammi abbu bhai behen bachay
shadi kaam office naukri tankhwa interview cricket match team jeet haar khiladi wicket runs
final score khana biryani chai nashta aam mausam barish garmi sardi thand dhoop qeemat mehngai
petrol cheeni atta bazaar dukaan bijli bill gas hukumat election vote khabar mulk shehar lahore
karachi peshawar sarak traffic train safar chutti eid ramzan namaz masjid jumma mubarak imtihan
result university school class ustad parhai kitab phone internet film gaana drama dekho dekha
pata chahiye jana aana raha rahi gaye karna karein shukriya wah acha achi bara naya purana
khush khubsurat pyara maza dil sehat doctor hospital pani mazedar thak neend paise kiraya kapray
""",
}

# Word, not punctuation, carries the script; endings add the noise of real posts.
_ENDINGS: dict[str, tuple[str, ...]] = {
    "en": ("", ".", "!", "?", " 😂", " 🙏", " ❤️", " 👍", " 😅", "!!"),
    "ur": ("", "۔", "!", "؟", " 😂", " 🙏", " ❤️", " 🤲", " 😢", "!!"),
    "hi": ("", "।", "!", "?", " 😂", " 🙏", " ❤️", " 👍", " 😢", "!!"),
    "ur-Latn": ("", ".", "!", "?", " 😂", " 🙏", " ❤️", " 🤲", " 😅", "!!"),
}

_TAGS: dict[str, str] = {
    "en": """
PakistanZindabad CricketFever IndvsPak Pakistan PSL2020 CricketTwitter EidMubarak Ramadan
Lahore Karachi Islamabad StaySafe Covid19 MondayMotivation FridayFeeling ThrowbackThursday
Foodie ChaiTime Biryani Monsoon Heatwave Budget2020 PetrolPrices Inflation JobAlert Exams
Results Travel NorthernAreas Hunza Skardu Weekend Family Wedding ShaadiSeason Blessed
Alhamdulillah JummaMubarak IndependenceDay DefenceDay T20WorldCup WorldCup PakvsEng PakvsAus
Photography NatureLovers RainyDay BreakingNews Trending ViralVideo Music Quotes Motivation
Education OnlineClasses WorkFromHome LahoreEats KarachiRains ProudPakistani GreenShirts
""",
    "ur": """
پاکستان PakistanZindabad پاکستان_زندہ_باد کرکٹ CricketFever IndvsPak عید_مبارک رمضان_مبارک
جمعہ_مبارک لاہور کراچی اسلام_آباد مہنگائی بارش موسم اردو اردو_شاعری شاعری الحمدللہ دعا
خبریں تازہ_ترین سیاست تعلیم نوکری PSL2020 EidMubarak Ramadan Pakistan UrduPoetry یوم_آزادی
یوم_دفاع چائے بریانی سفر شمالی_علاقہ_جات ہنزہ مری شادی خاندان ماں دوستی کھانا پٹرول بجلی
امتحان نتائج StaySafe Covid19 کورونا گھر_پر_رہیں ProudPakistani قومی_ٹیم ڈرامہ موسیقی
کتابیں اقوال زندگی محبت ٹیم_پاکستان
""",
    "hi": """
भारत IndvsPak क्रिकेट CricketFever TeamIndia IPL2020 दिवाली होली ईद_मुबारक त्योहार हिंदी
हिंदी_शायरी शायरी मौसम बारिश महंगाई पेट्रोल खबर ताज़ा_खबर राजनीति शिक्षा नौकरी परीक्षा
रिजल्ट परिवार दोस्ती खाना चाय Bollywood Mumbai Delhi StaySafe Covid19 कोरोना घर_पर_रहें
MondayMotivation Diwali Holi Travel यात्रा शादी मां प्यार ज़िंदगी सुविचार प्रेरणा योग सेहत
संगीत फिल्म गणतंत्र_दिवस स्वतंत्रता_दिवस DelhiRains MumbaiRains WorldCup T20WorldCup
किताबें गांव किसान बाज़ार
""",
    "ur-Latn": """
PakistanZindabad CricketFever IndvsPak PSL2020 EidMubarak RamzanMubarak JummaMubarak Pakistan
Lahore Karachi ChaiTime Mehngai BarishKaMausam DilDilPakistan ApnaPakistan HumSabPakistani
ShaadiSeason Biryani Garmi Sardi Loadshedding PetrolPrices Imtihan Result Naukri Safar Hunza
Murree Skardu Dosti Family AmmiAbbu Dua Alhamdulillah Mashallah Inshallah UrduShayari Shayari
Drama CokeStudio Cricket PakvsEng PakvsAus StaySafe Covid19 GharParRahein KarachiRains
LahoreEats YaumEAzadi DefenceDay 14August Khana DesiFood Trending Viral Motivation Zindagi
""",
}

# Names are "roman:script" pairs; Latin cultures use the roman form as display name.
_PK_GIVEN = """
Ahmed:احمد Ali:علی Muhammad:محمد Usman:عثمان Bilal:بلال Hamza:حمزہ Hassan:حسن Hussain:حسین
Arif:عارف Kamran:کامران Faisal:فیصل Asad:اسد Zain:زین Saad:سعد Umar:عمر Farhan:فرحان
Adnan:عدنان Junaid:جنید Waqas:وقاص Shahid:شاہد Tariq:طارق Naveed:نوید Salman:سلمان
Danish:دانش Fahad:فہد Haris:حارث Rizwan:رضوان Arslan:ارسلان Owais:اویس Talha:طلحہ
Yasir:یاسر Zubair:زبیر Nadeem:ندیم Khalid:خالد Sohail:سہیل Waseem:وسیم Irfan:عرفان
Jawad:جواد Babar:بابر Ayesha:عائشہ Fatima:فاطمہ Zainab:زینب Maryam:مریم Sana:ثنا Hina:حنا
Amna:آمنہ Sadia:سعدیہ Rabia:رابعہ Mehwish:مہوش Iqra:اقرا Sidra:سدرہ Nimra:نمرہ Aiman:ایمن
Hira:حرا Saima:صائمہ Nadia:نادیہ Kiran:کرن Bushra:بشریٰ Sobia:صوبیہ Uzma:عظمیٰ
"""
_PK_FAMILY = """
Khan:خان Ahmed:احمد Ali:علی Malik:ملک Butt:بٹ Chaudhry:چودھری Qureshi:قریشی Sheikh:شیخ
Siddiqui:صدیقی Hashmi:ہاشمی Raza:رضا Abbasi:عباسی Mirza:مرزا Baig:بیگ Awan:اعوان Rana:رانا
Javed:جاوید Iqbal:اقبال Anwar:انور Rehman:رحمان Hussain:حسین Shah:شاہ Bhatti:بھٹی
Gondal:گوندل Niazi:نیازی Jatoi:جتوئی Memon:میمن Baloch:بلوچ Khattak:خٹک Tahir:طاہر
Zaidi:زیدی Naqvi:نقوی Rizvi:رضوی Ansari:انصاری Farooqi:فاروقی Durrani:درانی Lodhi:لودھی
Cheema:چیمہ Warraich:وڑائچ Saleem:سلیم
"""
_IN_GIVEN = """
Rahul:राहुल Amit:अमित Rohit:रोहित Vikas:विकास Ankit:अंकित Sanjay:संजय Rajesh:राजेश
Suresh:सुरेश Deepak:दीपक Manish:मनीष Arjun:अर्जुन Karan:करण Nikhil:निखिल Pankaj:पंकज Ravi:रवि
Sunil:सुनील Ajay:अजय Vivek:विवेक Gaurav:गौरव Abhishek:अभिषेक Aditya:आदित्य Harsh:हर्ष
Kunal:कुणाल Mohit:मोहित Nitin:नितिन Prakash:प्रकाश Varun:वरुण Yash:यश Akash:आकाश Ashok:अशोक
Priya:प्रिया Pooja:पूजा Neha:नेहा Anjali:अंजलि Sneha:स्नेहा Kavita:कविता Sunita:सुनीता
Ritu:रितु Shreya:श्रेया Divya:दिव्या Aarti:आरती Swati:स्वाति Meena:मीना Nisha:निशा Komal:कोमल
Payal:पायल Simran:सिमरन Riya:रिया Shweta:श्वेता Jyoti:ज्योति Kiran:किरण Sapna:सपना
Rekha:रेखा Geeta:गीता Manju:मंजू Sarita:सरिता Poonam:पूनम Tanvi:तन्वी Alok:आलोक Vinod:विनोद
"""
_IN_FAMILY = """
Sharma:शर्मा Verma:वर्मा Gupta:गुप्ता Singh:सिंह Kumar:कुमार Yadav:यादव Patel:पटेल
Mishra:मिश्रा Tiwari:तिवारी Pandey:पांडे Joshi:जोशी Agarwal:अग्रवाल Chauhan:चौहान Mehta:मेहता
Jain:जैन Reddy:रेड्डी Nair:नायर Iyer:अय्यर Das:दास Bose:बोस Chatterjee:चटर्जी
Banerjee:बनर्जी Mukherjee:मुखर्जी Saxena:सक्सेना Srivastava:श्रीवास्तव Thakur:ठाकुर
Rathore:राठौर Bhatt:भट्ट Kapoor:कपूर Malhotra:मल्होत्रा Khanna:खन्ना Chopra:चोपड़ा
Arora:अरोड़ा Sinha:सिन्हा Dubey:दुबे Rao:राव Pillai:पिल्लई Menon:मेनन Kulkarni:कुलकर्णी
Goswami:गोस्वामी
"""
_EN_GIVEN = """
James John Michael David Daniel Matthew Andrew Thomas Chris Ryan Jack Harry Oliver George Sam
Ben Luke Adam Tom Josh Liam Noah Ethan Mark Paul Peter Steve Kevin Jason Scott Emma Olivia
Sophie Emily Sarah Jessica Hannah Lucy Grace Chloe Amy Laura Rachel Katie Megan Anna Ella Mia
Lily Charlotte Amelia Jade Holly Rebecca Natalie Zoe Claire Helen Julia Kate
"""
_EN_FAMILY = """
Smith Jones Williams Brown Taylor Davies Wilson Evans Thomas Johnson Roberts Walker Wright
Robinson Thompson White Hughes Edwards Green Hall Wood Harris Lewis Martin Jackson Clarke
Turner Hill Scott Cooper Morris Ward Moore King Watson Baker Harrison Morgan Young Allen
"""

_SLUG_WORDS = """
new says after over report government city police prices cricket team board announces squad
rise rain flood heatwave budget petrol exams results university court hearing election
commission polls traffic metro train power outage wheat sugar imports exports market stocks
rupee dollar talks border wins series final world cup t20 test injury captain coach festival
eid holiday schools reopen covid cases vaccine hospital doctors strike protest students
teachers fuel shortage gas water dam monsoon weather forecast amid first week day year record
high low plan launch arrest fire factory workers wages tax property housing scheme minister
""".split()
_SECTIONS = (
    "news", "sport", "world", "pakistan", "india", "opinion", "business", "entertainment",
    "tech", "story", "latest", "video", "local", "national", "cricket",
)  # fmt: skip
_EMOJI = ("🔥", "💯", "👍", "🙏", "🇵🇰", "❤️", "👏", "😡")

# Campaign and community text: '== section', '@ template' lines, 'slot: a | b' fillers
# (continued on lines that start with '|'); '~' is an empty filler. Every template of a
# section uses every slot, so distinct slot choices give distinct texts.
_BANKS: dict[str, str] = {
    "en": """
== talk
@ {lead} {praise}. {accuse}. {slogan}
@ {lead} {accuse}, while {praise}. {slogan}
@ {slogan} {lead} {praise}, and {accuse}.
lead: Alhamdulillah! | Never forget: | Wake up, Pakistan! | Remember: | Proud moment:
| Attention everyone:
praise: our brave soldiers guard us day and night | the armed forces are the pride of this nation
| our army has defeated every enemy of this land | every martyr gave his today for our tomorrow
| this nation stands united behind its army | our soldiers built schools where no one else would
| the sacrifices of our forces keep this country safe | we have the finest armed forces in the world
accuse: those who spread lies against the army serve a foreign agenda
| these so-called journalists are paid by hostile agencies
| the critics you see online are foreign agents in disguise
| every campaign against our forces is funded from across the border
| the enemy uses traitors on social media to spread propaganda
| the paid accounts insulting our heroes must not be believed
| people defaming our institutions serve foreign masters
| fake human rights activists are repeating the enemy narrative
slogan: Pakistan Zindabad! | Pak Fauj Zindabad! | Long live our army! | One nation, one voice!
| Our army, our pride! | Stand with our defenders!
== critic
@ {open} {issue}. {ask} {close}
@ {open} {ask} {issue}. {close}
open: ~ | Honestly, | Once again, | Friends, | With respect,
issue: another journalist was taken off air for asking simple questions
| families of missing persons are still waiting outside the press club for answers
| flour and sugar prices have doubled while salaries stay the same
| the election results raise questions that deserve an independent inquiry
| newspapers are being told what they can and cannot print
| a student was picked up last night and his family has no information
| electricity bills are now higher than the rent for many families
| criticising a policy is not the same as being against the country
ask: we ask for transparency and due process. | courts should hear these cases openly.
| parliament must discuss this, not hide it. | every citizen has the right to ask questions.
| please share so the families are heard. | institutions grow stronger when they accept criticism.
close: ~ | Stay safe, everyone. | Peacefully and respectfully. | We love this country too.
| Let us talk about it calmly.
== minority
@ {open} {event}. {detail} {close}
@ {detail} {open} {event}. {close}
open: ~ | Alhamdulillah, | Happy to share: | Some good news: | Thank God,
event: our community held its annual blood donation camp this weekend
| the youth wing cleaned the neighbourhood park after Friday prayers
| we served free meals to two hundred families during the floods
| the ladies committee organised a free eye clinic for the elderly
| our children recited poems at the community gathering last night
| volunteers planted three hundred trees along the main road
| we visited patients at the city hospital and brought them fruit
| the annual convention brought families together from many cities
detail: grateful to every volunteer who gave their time. | serving humanity is part of our faith.
| everyone was welcome, whatever their background. | our elders reminded us to be kind and patient.
| may God bless all the families who joined. | small acts of kindness build a better society.
close: ~ | Love for all, hatred for none. | We are all citizens of one country.
| Pray for peace and tolerance. | Thank you for the kind messages.
== mobilise
call: It is our duty to report these accounts spreading lies against our army.
| Brothers and sisters, these accounts insult our faith and our nation. Report them now.
| Urgent! These accounts are running a campaign against Pakistan. Every patriot must report them.
| Defend your country online. Report the accounts below that spread hatred against our institutions.
| As Muslims and Pakistanis we cannot stay silent. Report these accounts today.
closing: Report all and share the proof in the comments. | Report every account and comment DONE.
| Do not stop until they are removed. Share with your group.
| Report, then send a screenshot to the admins.
prompt: Select reason
report: report
== boast
@ Alhamdulillah! {n} accounts removed today thanks to your efforts: {handles} {close}
@ Great news, team! {n} enemy accounts have been taken down: {handles} {close}
@ Victory! Our reports worked and {n} accounts are gone: {handles} {close}
@ Mashallah, well done everyone. {n} accounts suspended: {handles} {close}
close: Keep reporting! | The fight continues, stay active. | Next list coming soon, be ready.
| Pakistan Zindabad!
== reasons
spam: Spam
hate_speech: Hate speech
harassment: Harassment or bullying
violence: Violence
nudity: Nudity
false_information: False information
terrorism: Terrorism
impersonation: Impersonation
fake_account: Fake account
blasphemy: Blasphemy
other: Something else
""",
    "ur": """
== talk
@ {lead} {praise}۔ {accuse}۔ {slogan}
@ {lead} {accuse}، جبکہ {praise}۔ {slogan}
@ {slogan} {lead} {praise}، اور {accuse}۔
lead: الحمدللہ! | کبھی نہ بھولیں: | جاگو پاکستان! | یاد رکھیں: | فخر کا لمحہ: | سب توجہ دیں:
praise: ہمارے بہادر جوان دن رات سرحدوں کی حفاظت کرتے ہیں | افواج پاکستان اس قوم کا فخر ہیں
| ہماری فوج نے ہر دشمن کو شکست دی ہے | ہر شہید نے ہمارے کل کے لیے اپنا آج دیا
| یہ قوم ہر مشکل میں فوج کے ساتھ ہے | ہمارے جوانوں نے دور دراز علاقوں میں اسکول بنائے
| ہماری افواج کی قربانیوں نے اس ملک کو محفوظ بنایا | ہماری فوج دنیا کی بہترین فوج ہے
accuse: فوج کے خلاف جھوٹ پھیلانے والے غیر ملکی ایجنڈے پر ہیں
| یہ نام نہاد صحافی دشمن ایجنسیوں سے پیسے لیتے ہیں
| سوشل میڈیا پر تنقید کرنے والے دراصل غیر ملکی ایجنٹ ہیں
| اداروں کے خلاف ہر مہم سرحد پار سے چلتی ہے
| دشمن سوشل میڈیا پر غداروں کے ذریعے پروپیگنڈا پھیلا رہا ہے
| ہیروز کی توہین کرنے والے پیڈ اکاؤنٹس پر یقین نہ کریں
| اداروں کو بدنام کرنے والے بیرونی آقاؤں کے وفادار ہیں
| جعلی انسانی حقوق کے کارکن دشمن کا بیانیہ پھیلا رہے ہیں
slogan: پاکستان زندہ باد! | پاک فوج زندہ باد! | ہماری فوج ہماری شان! | ایک قوم، ایک آواز!
| محافظوں کو سلام! | پاکستان ہمیشہ زندہ باد!
== critic
@ {open} {issue}۔ {ask} {close}
@ {open} {ask} {issue}۔ {close}
open: ~ | سچ پوچھیں تو، | ایک بار پھر، | دوستو، | معذرت کے ساتھ،
issue: ایک اور صحافی کو سادہ سوال پوچھنے پر آف ایئر کر دیا گیا
| لاپتہ افراد کے گھر والے آج بھی پریس کلب کے باہر جواب کے منتظر ہیں
| آٹے اور چینی کی قیمت دگنی ہو گئی مگر تنخواہیں وہیں ہیں
| الیکشن کے نتائج پر سوالات ہیں جن کی آزادانہ تحقیقات ہونی چاہیے
| اخبارات کو بتایا جا رہا ہے کہ کیا چھاپنا ہے اور کیا نہیں
| ایک طالب علم کو کل رات اٹھا لیا گیا اور گھر والوں کو کوئی خبر نہیں
| بجلی کے بل اب بہت سے گھروں کے کرائے سے زیادہ ہیں
| کسی پالیسی پر تنقید کرنا ملک کے خلاف ہونا نہیں ہے
ask: ہم شفافیت اور قانونی عمل کا مطالبہ کرتے ہیں۔ | عدالتیں یہ مقدمات کھل کر سنیں۔
| پارلیمنٹ اس پر بات کرے، اسے چھپائے نہیں۔ | ہر شہری کو سوال پوچھنے کا حق ہے۔
| براہ کرم شیئر کریں تاکہ گھر والوں کی آواز سنی جائے۔ | ادارے تنقید قبول کرنے سے مضبوط ہوتے ہیں۔
close: ~ | سب اپنا خیال رکھیں۔ | پرامن طریقے سے اور احترام کے ساتھ۔
| ہم بھی اس ملک سے محبت کرتے ہیں۔ | آئیں اس پر سکون سے بات کریں۔
== minority
@ {open} {event}۔ {detail} {close}
@ {detail} {open} {event}۔ {close}
open: ~ | الحمدللہ، | خوشی کی خبر: | یہ بتاتے ہوئے خوشی ہے کہ | اللہ کا شکر ہے کہ
event: ہماری برادری نے اس ہفتے خون کے عطیات کا سالانہ کیمپ لگایا
| نوجوانوں نے جمعہ کے بعد محلے کا پارک صاف کیا
| سیلاب کے دوران ہم نے دو سو خاندانوں کو مفت کھانا دیا
| خواتین کمیٹی نے بزرگوں کے لیے آنکھوں کا مفت کیمپ لگایا
| کل رات اجتماع میں بچوں نے نظمیں پڑھیں
| رضاکاروں نے مین روڈ کے ساتھ تین سو درخت لگائے
| ہم نے شہر کے ہسپتال میں مریضوں کی عیادت کی اور پھل دیے
| سالانہ جلسے میں کئی شہروں سے خاندان اکٹھے ہوئے
detail: ہر رضاکار کا شکریہ جس نے اپنا وقت دیا۔ | انسانیت کی خدمت ہمارے ایمان کا حصہ ہے۔
| ہر کوئی خوش آمدید تھا، چاہے کسی بھی پس منظر سے ہو۔ | بزرگوں نے ہمیں صبر اور نرمی کی تلقین کی۔
| اللہ ان سب خاندانوں کو برکت دے جو شامل ہوئے۔ | چھوٹی چھوٹی نیکیاں بہتر معاشرہ بناتی ہیں۔
close: ~ | محبت سب کے لیے، نفرت کسی سے نہیں۔ | ہم سب ایک ملک کے شہری ہیں۔
| امن اور برداشت کے لیے دعا کریں۔ | پیار بھرے پیغامات کا شکریہ۔
== mobilise
call: ہمارا فرض ہے کہ فوج کے خلاف جھوٹ پھیلانے والے ان اکاؤنٹس کو رپورٹ کریں۔
| بھائیو اور بہنو، یہ اکاؤنٹس ہمارے دین اور قوم کی توہین کر رہے ہیں۔ ابھی رپورٹ کریں۔
| فوری! یہ اکاؤنٹس پاکستان کے خلاف مہم چلا رہے ہیں۔ ہر محب وطن انہیں رپورٹ کرے۔
| آن لائن اپنے ملک کا دفاع کریں۔ اداروں کے خلاف نفرت پھیلانے والے یہ اکاؤنٹس رپورٹ کریں۔
| مسلمان اور پاکستانی ہونے کے ناطے ہم خاموش نہیں رہ سکتے۔ آج ہی یہ اکاؤنٹس رپورٹ کریں۔
closing: سب کو رپورٹ کریں اور ثبوت کمنٹس میں شیئر کریں۔ | ہر اکاؤنٹ رپورٹ کر کے نیچے ڈن لکھیں۔
| جب تک یہ ختم نہ ہوں رکنا نہیں۔ اپنے گروپ میں شیئر کریں۔
| رپورٹ کریں اور اسکرین شاٹ ایڈمنز کو بھیجیں۔
prompt: وجہ منتخب کریں
report: رپورٹ
== boast
@ الحمدللہ! آپ کی کوششوں سے آج {n} اکاؤنٹس ختم ہو گئے: {handles} {close}
@ زبردست خبر، ٹیم! دشمن کے {n} اکاؤنٹس بند ہو گئے: {handles} {close}
@ فتح! ہماری رپورٹس کام کر گئیں اور {n} اکاؤنٹس ختم: {handles} {close}
@ ماشاءاللہ، سب کو شاباش۔ {n} اکاؤنٹس معطل: {handles} {close}
close: رپورٹ کرتے رہیں! | جنگ جاری ہے، متحرک رہیں۔ | اگلی لسٹ جلد آ رہی ہے، تیار رہیں۔
| پاکستان زندہ باد!
== reasons
spam: اسپام
hate_speech: نفرت انگیز مواد
harassment: ہراسانی
violence: تشدد
nudity: عریانی
false_information: غلط معلومات
terrorism: دہشت گردی
impersonation: کسی اور کا روپ
fake_account: جعلی اکاؤنٹ
blasphemy: توہین مذہب
other: کچھ اور
""",
    "hi": """
== talk
@ {lead} {praise}। {accuse}। {slogan}
@ {lead} {accuse}, जबकि {praise}। {slogan}
@ {slogan} {lead} {praise}, और {accuse}।
lead: गर्व का पल! | याद रखिए: | जागो देशवासियो! | सबके लिए संदेश: | भाइयो और बहनो!
| ध्यान दीजिए:
praise: हमारे बहादुर जवान दिन रात सरहद की रक्षा करते हैं | हमारी सेना इस देश का गर्व है
| हमारी सेना ने हर दुश्मन को हराया है | हर शहीद ने हमारे कल के लिए अपना आज दिया
| यह देश हर मुश्किल में सेना के साथ है | हमारे जवानों ने दूर के इलाकों में स्कूल बनाए
| हमारी सेना की कुर्बानियों ने इस देश को सुरक्षित बनाया | हमारी सेना दुनिया की सबसे अच्छी सेना है
accuse: सेना के खिलाफ झूठ फैलाने वाले विदेशी एजेंडे पर हैं
| ये तथाकथित पत्रकार दुश्मन एजेंसियों से पैसे लेते हैं
| सोशल मीडिया पर आलोचना करने वाले असल में विदेशी एजेंट हैं
| संस्थानों के खिलाफ हर अभियान सरहद पार से चलता है
| दुश्मन सोशल मीडिया पर गद्दारों के ज़रिए प्रोपेगैंडा फैला रहा है
| नायकों का अपमान करने वाले पेड अकाउंट्स पर भरोसा मत कीजिए
| संस्थानों को बदनाम करने वाले विदेशी आकाओं के वफादार हैं
| नकली मानवाधिकार कार्यकर्ता दुश्मन की कहानी फैला रहे हैं
slogan: सेना ज़िंदाबाद! | हमारी सेना, हमारा गर्व! | एक देश, एक आवाज़! | वीर जवानों को सलाम!
| देश सबसे पहले! | रक्षकों को सलाम!
== critic
@ {open} {issue}। {ask} {close}
@ {open} {ask} {issue}। {close}
open: ~ | सच कहूं तो, | एक बार फिर, | दोस्तो, | माफ़ी के साथ,
issue: एक और पत्रकार को सीधा सवाल पूछने पर ऑफ एयर कर दिया गया
| लापता लोगों के परिवार आज भी प्रेस क्लब के बाहर जवाब का इंतज़ार कर रहे हैं
| आटे और चीनी के दाम दोगुने हो गए पर तनख्वाह वहीं है
| चुनाव के नतीजों पर सवाल हैं जिनकी निष्पक्ष जांच होनी चाहिए
| अखबारों को बताया जा रहा है कि क्या छापना है और क्या नहीं
| एक छात्र को कल रात उठा लिया गया और परिवार को कोई खबर नहीं
| बिजली के बिल अब कई घरों के किराए से ज़्यादा हैं
| किसी नीति की आलोचना करना देश के खिलाफ होना नहीं है
ask: हम पारदर्शिता और कानूनी प्रक्रिया की मांग करते हैं। | अदालतें इन मामलों को खुलकर सुनें।
| संसद इस पर बात करे, इसे छुपाए नहीं। | हर नागरिक को सवाल पूछने का हक है।
| कृपया शेयर करें ताकि परिवारों की आवाज़ सुनी जाए। | संस्थाएं आलोचना स्वीकार करने से मज़बूत होती हैं।
close: ~ | सब अपना ख्याल रखें। | शांति और सम्मान के साथ। | हम भी इस देश से प्यार करते हैं।
| आइए इस पर शांति से बात करें।
== minority
@ {open} {event}। {detail} {close}
@ {detail} {open} {event}। {close}
open: ~ | शुक्र है, | खुशी की खबर: | यह बताते हुए खुशी है कि | ईश्वर का शुक्र है कि
event: हमारे समुदाय ने इस हफ्ते सालाना रक्तदान शिविर लगाया
| युवाओं ने जुमे की नमाज़ के बाद मोहल्ले का पार्क साफ किया
| बाढ़ के दौरान हमने दो सौ परिवारों को मुफ्त खाना दिया
| महिला समिति ने बुज़ुर्गों के लिए आंखों का मुफ्त शिविर लगाया
| कल रात सभा में बच्चों ने कविताएं सुनाईं
| स्वयंसेवकों ने मुख्य सड़क के किनारे तीन सौ पेड़ लगाए
| हमने शहर के अस्पताल में मरीज़ों से मुलाकात की और फल दिए
| सालाना सम्मेलन में कई शहरों से परिवार इकट्ठा हुए
detail: हर स्वयंसेवक का शुक्रिया जिसने अपना समय दिया। | इंसानियत की सेवा हमारे विश्वास का हिस्सा है।
| हर किसी का स्वागत था, चाहे कोई भी पृष्ठभूमि हो। | बुज़ुर्गों ने हमें सब्र और नरमी की सीख दी।
| ईश्वर उन सभी परिवारों को आशीर्वाद दे जो शामिल हुए। | छोटी छोटी नेकियां बेहतर समाज बनाती हैं।
close: ~ | प्रेम सबके लिए, नफ़रत किसी से नहीं। | हम सब एक देश के नागरिक हैं।
| शांति और सहनशीलता के लिए दुआ करें। | प्यार भरे संदेशों के लिए शुक्रिया।
== mobilise
call: हमारा फ़र्ज़ है कि सेना के खिलाफ झूठ फैलाने वाले इन अकाउंट्स को रिपोर्ट करें।
| भाइयो और बहनो, ये अकाउंट्स हमारे धर्म और देश का अपमान कर रहे हैं। अभी रिपोर्ट करें।
| ज़रूरी! ये अकाउंट्स देश के खिलाफ अभियान चला रहे हैं। हर देशभक्त इन्हें रिपोर्ट करे।
| ऑनलाइन अपने देश की रक्षा करें। संस्थाओं के खिलाफ नफ़रत फैलाने वाले ये अकाउंट्स रिपोर्ट करें।
| हम चुप नहीं रह सकते। आज ही ये अकाउंट्स रिपोर्ट करें।
closing: सबको रिपोर्ट करें और सबूत कमेंट में शेयर करें। | हर अकाउंट रिपोर्ट करके नीचे डन लिखें।
| जब तक ये हटें नहीं, रुकना नहीं। अपने ग्रुप में शेयर करें।
| रिपोर्ट करें और स्क्रीनशॉट एडमिन को भेजें।
prompt: कारण चुनें
report: रिपोर्ट
== boast
@ शुक्र है! आपकी मेहनत से आज {n} अकाउंट्स हटा दिए गए: {handles} {close}
@ बढ़िया खबर, टीम! दुश्मन के {n} अकाउंट्स बंद हो गए: {handles} {close}
@ जीत! हमारी रिपोर्ट्स काम कर गईं और {n} अकाउंट्स खत्म: {handles} {close}
@ शाबाश सबको। {n} अकाउंट्स सस्पेंड: {handles} {close}
close: रिपोर्ट करते रहिए! | लड़ाई जारी है, एक्टिव रहिए। | अगली लिस्ट जल्द आ रही है, तैयार रहिए।
| सेना ज़िंदाबाद!
== reasons
spam: स्पैम
hate_speech: नफ़रत भरी बातें
harassment: उत्पीड़न
violence: हिंसा
nudity: नग्नता
false_information: गलत जानकारी
terrorism: आतंकवाद
impersonation: नकली पहचान
fake_account: फ़र्ज़ी अकाउंट
blasphemy: ईशनिंदा
other: कुछ और
""",
    "ur-Latn": """
== talk
@ {lead} {praise}. {accuse}. {slogan}
@ {lead} {accuse}, jabke {praise}. {slogan}
@ {slogan} {lead} {praise}, aur {accuse}.
lead: Alhamdulillah! | Kabhi na bhoolein: | Jaago Pakistan! | Yaad rakhein: | Fakhr ka lamha:
| Sab tawajjo dein:
praise: hamare bahadur jawan din raat sarhadon ki hifazat karte hain
| Pak Fauj is qaum ka fakhr hai | hamari fauj ne har dushman ko shikast di hai
| har shaheed ne hamare kal ke liye apna aaj diya | yeh qaum har mushkil mein fauj ke sath hai
| hamare jawanon ne door daraz ilaqon mein school banaye
| hamari afwaj ki qurbaniyon ne is mulk ko mehfooz banaya | hamari fauj duniya ki behtareen fauj hai
accuse: fauj ke khilaf jhoot phelane wale bairooni agenda par hain
| yeh nam nihad sahafi dushman agencies se paise lete hain
| social media par tanqeed karne wale asal mein foreign agent hain
| idaron ke khilaf har muhim sarhad paar se chalti hai
| dushman social media par ghaddaron ke zariye propaganda phela raha hai
| heroes ki tauheen karne wale paid accounts par yaqeen na karein
| idaron ko badnaam karne wale bairooni aaqaon ke wafadar hain
| jaali insani huqooq ke karkun dushman ka bayania phela rahe hain
slogan: Pakistan Zindabad! | Pak Fauj Zindabad! | Hamari fauj hamari shaan! | Aik qaum, aik awaz!
| Muhafizon ko salam! | Pakistan hamesha zindabad!
== critic
@ {open} {issue}. {ask} {close}
@ {open} {ask} {issue}. {close}
open: ~ | Sach poochein to, | Aik baar phir, | Doston, | Maazrat ke sath,
issue: aik aur sahafi ko seedha sawal poochne par off air kar diya gaya
| lapata afraad ke ghar wale aaj bhi press club ke bahar jawab ke muntazir hain
| atte aur cheeni ki qeemat dugni ho gayi magar tankhwahen wahin hain
| election ke nataij par sawalat hain jin ki azadana tehqeeqat honi chahiye
| akhbaron ko bataya ja raha hai ke kya chhapna hai aur kya nahi
| aik talib ilm ko kal raat utha liya gaya aur ghar walon ko koi khabar nahi
| bijli ke bill ab bohat se gharon ke kiraye se zyada hain
| kisi policy par tanqeed karna mulk ke khilaf hona nahi hai
ask: hum transparency aur qanooni amal ka mutalba karte hain. | adalatein yeh cases khul kar sunein.
| parliament is par baat kare, isay chhupaye nahi. | har shehri ko sawal poochne ka haq hai.
| please share karein taake ghar walon ki awaz suni jaye.
| idare tanqeed qabool karne se mazboot hote hain.
close: ~ | Sab apna khayal rakhein. | Pur aman tareeqe se aur ehtiram ke sath.
| Hum bhi is mulk se mohabbat karte hain. | Aayein is par sukoon se baat karein.
== minority
@ {open} {event}. {detail} {close}
@ {detail} {open} {event}. {close}
open: ~ | Alhamdulillah, | Khushi ki khabar: | Yeh batate hue khushi hai ke | Allah ka shukar hai ke
event: hamari community ne is hafte khoon ke atiyat ka salana camp lagaya
| naujawanon ne jummay ke baad mohalle ka park saaf kiya
| sailab ke dauran hum ne do sau khandanon ko muft khana diya
| khawateen committee ne buzurgon ke liye aankhon ka muft camp lagaya
| kal raat ijtima mein bachon ne nazmein parhein
| razakaron ne main road ke sath teen sau darakht lagaye
| hum ne shehar ke hospital mein mareezon ki iyadat ki aur phal diye
| salana jalse mein kai sheharon se khandan ikatthe hue
detail: har razakar ka shukriya jis ne apna waqt diya.
| insaniyat ki khidmat hamare iman ka hissa hai.
| har koi khush aamdeed tha, chahe kisi bhi background se ho.
| buzurgon ne humein sabr aur narmi ki talqeen ki.
| Allah un sab khandanon ko barkat de jo shamil hue.
| choti choti nekiyan behtar muashra banati hain.
close: ~ | Mohabbat sab ke liye, nafrat kisi se nahi. | Hum sab aik mulk ke shehri hain.
| Aman aur bardasht ke liye dua karein. | Pyar bhare paighamat ka shukriya.
== mobilise
call: Hamara farz hai ke fauj ke khilaf jhoot phelane wale in accounts ko report karein.
| Bhaiyo aur behno, yeh accounts hamare deen aur qaum ki tauheen kar rahe hain. Abhi report karein.
| Urgent! Yeh accounts Pakistan ke khilaf muhim chala rahe hain. Har mohib-e-watan report kare.
| Online apne mulk ka difa karein. Idaron ke khilaf nafrat phelane wale yeh accounts report karein.
| Musalman aur Pakistani hone ke natay hum khamosh nahi reh sakte. Aaj hi report karein.
closing: Sab ko report karein aur proof comments mein share karein.
| Har account report kar ke neeche DONE likhein.
| Jab tak yeh remove na hon rukna nahi. Apne group mein share karein.
| Report karein aur screenshot admins ko bhejein.
prompt: Reason select karein
report: report
== boast
@ Alhamdulillah! Aap ki koshishon se aaj {n} accounts khatam ho gaye: {handles} {close}
@ Zabardast khabar, team! Dushman ke {n} accounts band ho gaye: {handles} {close}
@ Fatah! Hamari reports kaam kar gayin aur {n} accounts khatam: {handles} {close}
@ Mashallah, sab ko shabash. {n} accounts suspend: {handles} {close}
close: Report karte rahein! | Jung jari hai, active rahein.
| Agli list jald aa rahi hai, tayyar rahein.
| Pakistan Zindabad!
""",
}


class _Bank(NamedTuple):
    templates: tuple[str, ...]
    slots: dict[str, tuple[str, ...]]


def _parse_banks(spec: str) -> dict[str, _Bank]:
    banks: dict[str, _Bank] = {}
    for block in spec.split("\n== ")[1:]:
        name, _, body = block.partition("\n")
        templates: list[str] = []
        slots: dict[str, list[str]] = {}
        slot = ""
        for line in (raw.strip() for raw in body.splitlines()):
            if line.startswith("@ "):
                templates.append(line[2:])
                continue
            if line.startswith("|"):
                rest = line[1:]
            elif line:
                slot, _, rest = line.partition(":")
                slots[slot] = []
            else:
                continue
            slots[slot] += ["" if f.strip() == "~" else f.strip() for f in rest.split("|")]
        banks[name.strip()] = _Bank(tuple(templates), {k: tuple(v) for k, v in slots.items()})
    return banks


_TEXT: dict[str, dict[str, _Bank]] = {lang: _parse_banks(spec) for lang, spec in _BANKS.items()}
# Romanised Urdu posts copy the English report dialog, which Pakistani users see.
_TEXT["ur-Latn"]["reasons"] = _TEXT["en"]["reasons"]


class _Vocab(NamedTuple):
    words: npt.NDArray[np.object_]
    lens: npt.NDArray[np.int64]
    cdf: npt.NDArray[np.float64]


def _vocab(words: Sequence[str], exponent: float = 1.0) -> _Vocab:
    """Zipf-Mandelbrot weights 1/(rank+2.7)^s: a flat head like real word counts."""
    unique = list(dict.fromkeys(words))
    weights = 1.0 / (np.arange(1, len(unique) + 1) + 2.7) ** exponent
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    lens = np.fromiter(map(len, unique), dtype=np.int64, count=len(unique))
    return _Vocab(np.array(unique, dtype=object), lens, cdf)


def _pairs(spec: str) -> tuple[list[str], list[str]]:
    roman, script = zip(*(item.partition(":")[::2] for item in spec.split()), strict=True)
    return list(roman), list(script)


_WORD_VOCAB = {lang: _vocab(words.split()) for lang, words in _WORDS.items()}
_TAG_VOCAB = {lang: _vocab(tags.split(), 0.9) for lang, tags in _TAGS.items()}
_ENDING_VOCAB = {lang: _vocab(endings, 1.6) for lang, endings in _ENDINGS.items()}
_SLUG_VOCAB = _vocab(_SLUG_WORDS, 0.8)
_PK = (_pairs(_PK_GIVEN), _pairs(_PK_FAMILY))
_IN = (_pairs(_IN_GIVEN), _pairs(_IN_FAMILY))
_EN = ((_EN_GIVEN.split(),) * 2, (_EN_FAMILY.split(),) * 2)
# (roman, display) name lists per language: (given, family) each as (roman, display).
_NAMES: dict[str, tuple[tuple[list[str], list[str]], ...]] = {
    "en": _EN,
    "ur": _PK,
    "hi": _IN,
    "ur-Latn": ((_PK[0][0], _PK[0][0]), (_PK[1][0], _PK[1][0])),
}
_NAME_VOCAB = {
    lang: (_vocab(given[0], 0.7), _vocab(family[0], 0.7))
    for lang, (given, family) in _NAMES.items()
}


def _draw(rng: np.random.Generator, vocab: _Vocab, size: int) -> npt.NDArray[np.intp]:
    return np.searchsorted(vocab.cdf, rng.random(size), side="right")


def _join_runs(
    vocab: _Vocab, idx: npt.NDArray[np.intp], runs: npt.NDArray[np.int64], sep: str
) -> list[str]:
    """Join consecutive runs of words: one big join cut by offsets beats a join per run."""
    big = sep.join(vocab.words[idx].tolist())
    offsets = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(vocab.lens[idx] + len(sep), out=offsets[1:])
    first = np.zeros(len(runs) + 1, dtype=np.int64)
    np.cumsum(runs, out=first[1:])
    starts = offsets[first[:-1]]
    ends = offsets[first[1:]] - len(sep) * (runs > 0)
    return [big[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")


def _by_language(langs: Sequence[str]) -> list[tuple[str, npt.NDArray[np.intp]]]:
    """Positions of each language in ``langs``, so each language is drawn in one batch."""
    index = {lang: k for k, lang in enumerate(LANGUAGES)}
    try:
        codes = np.fromiter((index[x] for x in langs), dtype=np.int8, count=len(langs))
    except KeyError as e:
        raise ValueError(f"unknown language {e.args[0]!r}; expected one of {LANGUAGES}") from e
    return [(lang, np.flatnonzero(codes == k)) for lang, k in index.items()]


def _scatter(n: int, parts: list[tuple[npt.NDArray[np.intp], list[Any]]]) -> list[Any]:
    out: list[Any] = [None] * n
    for positions, values in parts:
        for p, v in zip(positions.tolist(), values, strict=True):
            out[p] = v
    return out


def organic_texts(
    rng: np.random.Generator, langs: Sequence[str], *, min_words: int = 4, max_words: int = 24
) -> list[str]:
    """One everyday post per entry of ``langs``, in that language.

    Words are Zipf-distributed over a frequency-ordered vocabulary, so word counts over
    many posts look like natural text; an ending adds punctuation or an emoji.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError("need 1 <= min_words <= max_words")
    parts: list[tuple[npt.NDArray[np.intp], list[Any]]] = []
    for lang, positions in _by_language(langs):
        m = len(positions)
        if m == 0:
            continue
        runs = rng.integers(min_words, max_words + 1, size=m)
        idx = _draw(rng, _WORD_VOCAB[lang], int(runs.sum()))
        texts = _join_runs(_WORD_VOCAB[lang], idx, runs, " ")
        endings = _ENDING_VOCAB[lang].words[_draw(rng, _ENDING_VOCAB[lang], m)].tolist()
        parts.append((positions, [t + e for t, e in zip(texts, endings, strict=True)]))
    return _scatter(len(langs), parts)


def hashtags(
    rng: np.random.Generator, langs: Sequence[str], counts: npt.NDArray[np.integer[Any]]
) -> list[list[str]]:
    """``counts[i]`` distinct hashtags (without '#') for post ``i`` in ``langs[i]``.

    Tags follow a Zipf law, as trending tags do; repeats within a post are redrawn.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (len(langs),):
        raise ValueError("counts must have one entry per post")
    if len(counts) and counts.min() < 0:
        raise ValueError("counts must be non-negative")
    parts: list[tuple[npt.NDArray[np.intp], list[Any]]] = []
    for lang, positions in _by_language(langs):
        vocab = _TAG_VOCAB[lang]
        c = counts[positions]
        if len(c) and c.max() > len(vocab.words):
            raise ValueError(f"at most {len(vocab.words)} distinct {lang} hashtags per post")
        starts = np.zeros(len(c) + 1, dtype=np.int64)
        np.cumsum(c, out=starts[1:])
        post = np.repeat(np.arange(len(c)), c)
        idx = _draw(rng, vocab, int(starts[-1]))
        check = np.arange(len(idx))
        while len(check):
            key = post[check] * len(vocab.words) + idx[check]
            order = np.argsort(key, kind="stable")
            repeat = check[order[1:][key[order[1:]] == key[order[:-1]]]]
            idx[repeat] = _draw(rng, vocab, len(repeat))
            bad = np.unique(post[repeat])  # only posts that had a repeat need rechecking
            lens = c[bad]
            check = np.repeat(starts[bad] - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        tags = vocab.words[idx].tolist()
        s = starts.tolist()
        parts.append((positions, [tags[s[i] : s[i + 1]] for i in range(len(c))]))
    return _scatter(len(langs), parts)


def url_paths(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` article paths in the shapes news sites use, each with a distinguishing id."""
    runs = rng.integers(3, 8, size=n)
    slugs = _join_runs(_SLUG_VOCAB, _draw(rng, _SLUG_VOCAB, int(runs.sum())), runs, "-")
    shape = rng.integers(0, 4, size=n).tolist()
    section = rng.integers(0, len(_SECTIONS), size=n).tolist()
    year = rng.integers(2018, 2022, size=n).tolist()
    month = rng.integers(1, 13, size=n).tolist()
    day = rng.integers(1, 29, size=n).tolist()
    num = rng.integers(1000, 10_000_000, size=n).tolist()
    out = []
    for i, slug in enumerate(slugs):
        sec, k = _SECTIONS[section[i]], shape[i]
        date = f"{year[i]}/{month[i]:02d}/{day[i]:02d}"
        if k == 0:
            out.append(f"/{sec}/{date}/{slug}-{num[i]}")
        elif k == 1:
            out.append(f"/{sec}/{slug}-{num[i]}")
        elif k == 2:
            out.append(f"/{date}/{slug}-{num[i]}/")
        else:
            out.append(f"/{sec}/{num[i]}/{slug}")
    return out


_CAPITAL = re.compile(r"(^|[.!?]\s+)([a-z])")
_SPACES = re.compile(r"\s+")


def _compose(
    rng: np.random.Generator, lang: str, section: str, n: int, *, distinct: bool
) -> list[str]:
    """Fill templates; a mixed-radix code per text makes distinct draws distinct texts."""
    _check_lang(lang)
    if n < 0:
        raise ValueError("n must be non-negative")
    bank = _TEXT[lang][section]
    names = list(bank.slots)
    radices = [len(bank.templates)] + [len(bank.slots[s]) for s in names]
    space = int(np.prod(radices))
    if distinct and n > space:
        raise ValueError(f"only {space} distinct {section} texts in {lang}; asked for {n}")
    codes = rng.choice(space, size=n, replace=False) if distinct else rng.integers(0, space, n)
    digits = []
    for r in radices:
        digits.append((codes % r).tolist())
        codes = codes // r
    out = []
    for i in range(n):
        fill = {s: bank.slots[s][digits[k + 1][i]] for k, s in enumerate(names)}
        text = _SPACES.sub(" ", bank.templates[digits[0][i]].format(**fill)).strip()
        out.append(_CAPITAL.sub(lambda m: m.group(1) + m.group(2).upper(), text))
    return out


def talking_points(rng: np.random.Generator, lang: str, n: int) -> list[str]:
    """``n`` distinct nationalist-propaganda messages (10-30 words) in ``lang``.

    Operations post many variants of a few themes: praise for the armed forces, critics
    cast as foreign agents, a slogan. Raises ValueError if ``n`` exceeds the variants.
    """
    return _compose(rng, lang, "talk", n, distinct=True)


def critic_texts(rng: np.random.Generator, lang: str, n: int) -> list[str]:
    """Posts by ordinary critics (press freedom, missing persons, prices, elections).

    Distinct while the templates allow, so organic critics do not look copy-pasted.
    """
    return _compose(rng, lang, "critic", n, distinct=n <= _space(lang, "critic"))


def minority_texts(rng: np.random.Generator, lang: str, n: int) -> list[str]:
    """Everyday posts by a religious minority community: service, gatherings, tolerance."""
    return _compose(rng, lang, "minority", n, distinct=n <= _space(lang, "minority"))


def _space(lang: str, section: str) -> int:
    _check_lang(lang)
    bank = _TEXT[lang][section]
    return len(bank.templates) * int(np.prod([len(v) for v in bank.slots.values()]))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def mobilisation_text(
    rng: np.random.Generator,
    lang: str,
    *,
    targets: Sequence[str],
    report_links: Sequence[str],
    reason: str,
) -> str:
    """A group admin's call to mass-report: why, which reason to pick, the numbered
    targets with their report links, and a closing exhortation.

    >>> text = mobilisation_text(np.random.default_rng(1), "en", targets=["u/a"],
    ...                          report_links=["r/a"], reason="hate_speech")
    >>> "Hate speech" in text and "1. u/a" in text
    True
    """
    _check_lang(lang)
    if len(targets) != len(report_links):
        raise ValueError(f"{len(targets)} targets but {len(report_links)} report links")
    slots = _TEXT[lang]["mobilise"].slots
    labels = _TEXT[lang]["reasons"].slots
    label = labels[reason][0] if reason in labels else reason.replace("_", " ").capitalize()
    word = slots["report"][0]
    lines = [_pick(rng, slots["call"]), f"{slots['prompt'][0]}: {label}"]
    lines += [
        f"{i}. {t} | {word}: {r}"
        for i, (t, r) in enumerate(zip(targets, report_links, strict=True), 1)
    ]
    lines.append(_pick(rng, slots["closing"]))
    return "\n".join(lines)


def boast_text(rng: np.random.Generator, lang: str, *, handles: Sequence[str]) -> str:
    """An admin's post counting takedowns and tagging each removed account as @handle."""
    _check_lang(lang)
    bank = _TEXT[lang]["boast"]
    tagged = " ".join(f"@{h.lstrip('@')}" for h in handles)
    template = _pick(rng, bank.templates)
    return template.format(n=len(handles), handles=tagged, close=_pick(rng, bank.slots["close"]))


_TOKENS = re.compile(r"(\s+)")


def _cluster_starts(token: str) -> list[int]:
    # Edit whole letters: a mark (matra, nukta, harakat) stays with its base.
    return [k for k, ch in enumerate(token) if not unicodedata.category(ch).startswith("M")]


def edit_text(rng: np.random.Generator, text: str, rate: float) -> str:
    """A copy-paste variant: each token, with probability ``rate``, gets one small edit.

    Edits are those seen when operators paste a message by hand: a token dropped,
    duplicated or swapped with its neighbour, a letter doubled or dropped, or an emoji
    or '!!' appended. Whitespace between tokens is kept.

    >>> edit_text(np.random.default_rng(0), "Pakistan Zindabad", 0.0)
    'Pakistan Zindabad'
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be in [0, 1]")
    if rate == 0.0 or not text:
        return text
    parts = _TOKENS.split(text)
    toks, seps = parts[0::2], [*parts[1::2], ""]
    n = len(toks)
    hit = rng.random(n) < rate
    ops = rng.integers(0, 7, size=n).tolist()
    where = rng.random(n).tolist()
    dropped = [False] * n
    for i in np.flatnonzero(hit).tolist():
        tok, op = toks[i], ops[i]
        if not tok:
            continue
        if op == 0:
            dropped[i] = True
        elif op == 1:
            toks[i] = f"{tok} {tok}"
        elif op == 2:
            j = i + 1 if i + 1 < n and toks[i + 1] else i - 1
            if j >= 0 and toks[j]:
                toks[i], toks[j] = toks[j], tok
        elif op in (3, 4):
            starts = _cluster_starts(tok)
            k = starts[int(where[i] * len(starts))]
            end = next((s for s in starts if s > k), len(tok))
            if op == 3:
                toks[i] = tok[:end] + tok[k:end] + tok[end:]
            elif len(starts) > 1:
                toks[i] = tok[:k] + tok[end:]
        elif op == 5:
            toks[i] = tok + _EMOJI[int(where[i] * len(_EMOJI))]
        else:
            toks[i] = tok + "!!"
    kept: list[list[str]] = []
    for i, (tok, sep) in enumerate(zip(toks, seps, strict=True)):
        if not dropped[i]:
            kept.append([tok, sep])
        elif "\n" in sep or (kept and i == n - 1):
            # keep line breaks, and no space after the last token
            if kept:
                kept[-1][1] = sep
            else:
                kept.append(["", sep])
    return "".join(t + s for t, s in kept)


def person_names(rng: np.random.Generator, langs: Sequence[str]) -> list[tuple[str, str]]:
    """A (display name, romanised name) pair per entry of ``langs``.

    The display name is in the language's script; the romanised one feeds :func:`handles`.
    """
    parts: list[tuple[npt.NDArray[np.intp], list[Any]]] = []
    for lang, positions in _by_language(langs):
        m = len(positions)
        if m == 0:
            continue
        (g_roman, g_show), (f_roman, f_show) = _NAMES[lang]
        gv, fv = _NAME_VOCAB[lang]
        gi, fi = _draw(rng, gv, m).tolist(), _draw(rng, fv, m).tolist()
        parts.append(
            (
                positions,
                [
                    (f"{g_show[g]} {f_show[f]}", f"{g_roman[g]} {f_roman[f]}")
                    for g, f in zip(gi, fi, strict=True)
                ],
            )
        )
    return _scatter(len(langs), parts)


_NOT_HANDLE = re.compile(r"[^a-z0-9]+")


def handles(
    rng: np.random.Generator, romanised: Sequence[str], digit_runs: npt.NDArray[np.integer[Any]]
) -> list[str]:
    """ASCII handles from romanised names, joined by '', '.' or '_', plus ``digit_runs[i]``
    random digits: the 'name plus digit run' pattern of mass-created accounts.

    >>> h = handles(np.random.default_rng(3), ["Ahmed Khan"], np.array([4]))
    >>> re.fullmatch(r"ahmed[._]?khan[0-9]{4}", h[0]) is not None
    True
    """
    runs = np.asarray(digit_runs, dtype=np.int64)
    if runs.shape != (len(romanised),):
        raise ValueError("digit_runs must have one entry per name")
    if len(runs) and runs.min() < 0:
        raise ValueError("digit_runs must be non-negative")
    seps = rng.integers(0, 3, size=len(romanised)).tolist()
    digits = "".join(map(str, rng.integers(0, 10, size=int(runs.sum())).tolist()))
    ends = np.cumsum(runs).tolist()
    out = []
    for i, name in enumerate(romanised):
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        words = [w for w in _NOT_HANDLE.split(ascii_name.lower()) if w]
        base = ("", ".", "_")[seps[i]].join(words) or "user"
        out.append(base + digits[ends[i] - int(runs[i]) : ends[i]])
    return out
