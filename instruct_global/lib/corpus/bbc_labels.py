"""The labels BBC World Service pages print around article text, per service.

Taken from the BBC's public front end (GitHub ``bbc/simorgh``,
``src/app/lib/config/services/<service>.ts``): the visually hidden prefixes of image and video
captions and image credits (``imageCopyrightOffscreenText`` ...), the related-content and
related-topics headings, byline labels, media-player notices, social-embed warnings and the
timestamp prefix. Text extraction flattens these into lines such as ``Asalin hoton, Reuters``
(Hausa image source) or ``Oríṣun àwòrán, Facebook/Koiki Media`` (Yoruba); none of them is
article prose.

Three kinds of label, matched on a casefolded, NFC line:

- ``prefixes``: a line that starts with the label followed by ``,`` or ``:`` (or is the label
  alone) is furniture: ``Bayanan hoto, <caption>``.
- ``byline_prefixes``: the same, only for short lines (bylines are a few words; prose may start
  with "Reporting from").
- ``lines``: a line that is the label alone (trailing ``:`` allowed) is furniture.
- ``patterns``: like ``lines`` with ``%provider_name%`` standing for any few words
  (``Kauce wa Twitter``).

Pure Python; no dagster import.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

BYLINE_MAX_WORDS = 10
_PROVIDER = "%provider_name%"


@dataclass(frozen=True)
class ServiceLabels:
    service: str
    prefixes: tuple[str, ...]
    lines: tuple[str, ...]
    byline_prefixes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


# English labels every service's media player and embeds print as they are.
_COMMON_LINES = (
    "Media player", "Audio player", "Video player", "Advertisement", "Content is not available",
    "Warning: Third party content may contain adverts",
    "Warning: The BBC is not responsible for the content of external sites.",
    "Sorry, we can’t display this part of the story on this lightweight mobile page.",
    "View the full version of the page to see all the content.",
)  # fmt: skip
_COMMON_PATTERNS = (
    "Skip %provider_name% post", "End of %provider_name% post", "View content on %provider_name%",
    "%provider_name% content may contain adverts.",
)  # fmt: skip

SERVICE_LABELS: dict[str, ServiceLabels] = {
    labels.service: labels
    for labels in (
        ServiceLabels(
            "yoruba",
            prefixes=("Oríṣun àwòrán", "Àkọlé àwòrán", "Àkọlé fídíò", "Àkọlé fọ́nrán ohùn", "Àkọlé"),
            lines=(
                "Àwọn afíkun lórí ìròyìn yìí", "Àwọn Àkórí Tójọra", "Ìròyìn tó ṣe kókó",
                "Èyítí A Ń Kà Jùlọ", "Èyí tí a wò jùlọ", "Ìgbà tí a ṣe àfíkun gbẹ̀yìn",
                "Àwọn àmúyẹ fun gbígbọ́ orin ko le ṣiṣẹ lori ẹ̀rọ rẹ", "Nnkan yìí kò sí mọ́.",
                "Kò tíì sí nnkan náà nílẹ̀ láti gbọ́",
                "BBC kò mọ̀ nípa àwọn ohun tí ó wà ní àwọn ojú òpó tí ó wà ní ìta.",
                "Ìwádìí kíkún lóríi kókó ìròyìn",
                # editorial "related stories" header seen on real article pages (issue 9)
                "Àwọn iròyin tì ẹ leè ní ìfẹ̀ síí",
            ),
        ),
        ServiceLabels(
            "hausa",
            prefixes=("Asalin hoton", "Bayanan hoto", "Bayanan bidiyo", "Bayanan sauti", "Bayani"),
            byline_prefixes=(
                "Marubuci", "Sanya sunan wanda ya rubuta labari", "Aiko rahoto daga", "An wallafa",
                "Bayani kan maƙala", "Wanda aka sabunta",
            ),
            lines=(
                "Karin bayani", "Labarai masu alaka", "Babban Labari", "Wanda aka fi karantawa",
                "Wadanda aka fi kallo", "Talla", "Na'urarku na da matsalar sauraren sauti",
                "Yanzu an daina samar da wannan shiri.",
                "Wannan shiri bai shigo ba tukuna don haka ba za a iya kunna shi ba.",
                "Gargadi: Ana iya samun talla wanda ba na BBC ba ne",
                "Gargadi: BBC ba za ta dauki alhakin bayanan da aka wallafa a shafukan da ba nata ne ba.",
                "BBC ba za ta dauki alhakin abubuwan da wasu shafukan daban suka wallafa ba.",
                "Babu karin bayanai", "Minti Daya Da BBC",
            ),
            patterns=(
                "Kauce wa %provider_name%", "Karshen labarin da aka sa a %provider_name%",
                "Ci gaba da duba %provider_name%", "Ana yi samun tallace-tallace %provider_name%",
            ),
        ),
        ServiceLabels(
            "igbo",
            prefixes=("Ebe foto si", "Nkọwa foto", "Aha onyonyo", "Aha nkeananụānụ", "Ihe a na-akpọ ya"),
            byline_prefixes=(
                "Onye dere ya", "Ndị mere akụkọ a", "Ebe akụkọ a si", "Mgbe e biputara ya", "Ebeg o si",
                "Mgbe ikpeazụ e tinyere ya ozi ọhụrụ",
            ),
            lines=(
                "Ihe ndị ọzọ n'akụkọ a", "Isiokwu ndị emetụtara", "Isi akụkọ", "Akụkọ akachasị gụọ",
                "Akachasị Gụọ", "Mgbasa ozi", "Ngwaọrụ gị akwadoghi ọkpụkpọ mgbasa ozi",
                "Ọdịnaya a adịghịzị", "Ọdịnaya a adịbeghị maka ọkpụkpọ.",
                "Warning: BBC amaghị maka ihe ndị si n'ọbaozi ndị ọzọ.",
                "BBC anaghị ahụta maka ọdịnaya nke saịtị ndị dị na mpụga.", "Kọwaara m isi akụkọ",
            ),
            patterns=("%provider_name% mgbasaozi azụmaahịa nwereike ịdị na ya",),
        ),
        ServiceLabels(
            "pidgin",
            prefixes=(
                "Wia dis foto come from", "Wetin we call dis foto", "Wetin we call dis Video",
                "Wetin we call dis Audio", "Wetin we call am",
            ),
            byline_prefixes=("New Informate",),
            lines=(
                "Another thing we de for inside dis tori", "Topics Wey Dem Resemble", "Top Tori",
                "Di one wey dem dey read well well", "Di one wey oda users dey read well well",
                "Tori we dem pay for", "Dem no support media player for your device",
                "Dis thing no dey again", "De thing wey de here never ready for you to play.",
                "Warning: Di BBC no dey responsible for di content of external sites.",
                "De external site no concern BBC.", "Informate me",
            ),
            patterns=("%provider_name% content fit contain adverts.",),
        ),
        ServiceLabels(
            "swahili",
            prefixes=("Chanzo cha picha", "Maelezo ya picha", "Maelezo ya video", "Maelezo ya sauti", "Maelezo"),
            byline_prefixes=(
                "Maelezo kuhusu taarifa", "Iliyochapishwa", "Akiripoti kutoka", "Nafasi", "Imeboreshwa",
            ),
            lines=(
                "Maelezo zaidi kuhusu taarifa hii", "Mada zinazohusiana", "Habari kuu", "Zinazovuma zaidi",
                "Iliyosomwa zaidi", "Matangazo", "Endelea kusoma", "Kicheza Nyenzo", "Kicheza Sauti",
                "Kicheza Video", "Huwezi kusikiliza tena", "Taarifa hii haipatikani tena.",
                "Kipindi hiki hakipatikani kwa sasa.",
                "Onyo: Imetoka kwingine na inaweza kuwa na matangazo",
                "Onyo: BBC haihusiki na maudhui ya nje", "Mitandao ya kijamii inaweza beba matangazo",
                "BBC haihusiki na taarifa za kutoka mitandao ya nje.", "Haipatikani tena",
                "Gumzo mitandaoni",
            ),
            patterns=(
                "Ruka %provider_name% ujumbe", "Mwisho wa %provider_name% ujumbe",
                "Tazama zaidi katika %provider_name%",
            ),
        ),
        ServiceLabels(
            "amharic",
            prefixes=("የፎቶው ባለመብት", "የምስሉ መግለጫ", "የተንቀሳቃሹ ምስል መግለጫ", "የድምፅ መግለጫ", "የቪዲዮ መግለጫ", "መግለጫ"),
            byline_prefixes=("ፀሐፊ", "የጽሁፉ መረጃ", "ታትሟል", "ዘገባው ከ", "የሥራ ድርሻ", "ተሻሽሏል"),
            lines=(
                "በዚህ ዘገባ ላይ ተጨማሪ መረጃ", "ተያያዥ ርዕሶች", "እንዳያመልጥዎ", "በስፋት የተነበቡ", "ብዙ የተነበቡ",
                "ማስታወቂያ", "የእርሶ መሳሪያ ሚዲያ ፕሌይ ባክን ማጫወት ኣልተቻለም።", "ይህንን ካሁን በኋላ ማግኘት አይችሉም፡፡",
                "ይህ ክፍል አርስዎ ገና አልተገኘም", "ማሳሰቢያ፡ የሦስተኛ ወገን ይዘቶች ማስታወቂያ ሊኖራቸው ይችላል",
                "ማሳሰቢያ: በሌሎች ገጾች ላይ ላሉ ይዘቶች ቢቢሲ ኃላፊነት አይወስድም።",
                "ቢቢሲ ከሌሎች ድረ-ገጾች ለሚመጡ መረጃዎች ሀላፊነት አይወስድም.", "የሚፈልጉት ይዘት የለም", "ከየፈርጁ",
            ),
            patterns=("የ %provider_name% ይዘትን ይለፉት", "የ %provider_name% ይዘት መጨረሻ", "በ %provider_name% ተጨማሪ ይመልከቱ"),
        ),
        ServiceLabels(
            "somali",
            prefixes=(
                "Xigashada Sawirka", "Qoraalka sawirka", "Qoraalka Muuqaalka", "Qoraalka Codka", "Qoraal",
            ),
            byline_prefixes=("Waa la cusbooneysiiyay",),
            lines=(
                "Warar kale oo dheeraad ah oo la xiriira qodobkan", "Mowduucyada la xiriira",
                "Wararka ugu waaweyn", "Ugu akhris badan", "Ugu daawasho badan", "Xayeysiin",
                "Ciyaaridda warbixinnada", "Ciyaaridda Codka", "Ciyaaridda Muuqaalka",
                "Qalabkan kuma ciyaari kartid maqalka iyo muuqaalka", "Adeeggan hadda ma heli kartid",
                "Adeeggani hadda diyaar ma aha oo ma ciyaari kartid",
                "Digniin: Waxaa suuragal ah in macluumaadka dad kale ay ku jiraan xayaysiin",
                "Digniin: BBC macluumaadka ku qoran bog kale masuul kama ahan",
                "BBC masuul kama ahan macluumadka bogagga kale ee dibadda.", "Macluumaadkan lama heli karo",
            ),
            patterns=(
                "Ka bood %provider_name% boggan", "Dhammaadka %provider_name% boggan",
                "Faahfaahin ka eeg %provider_name%", "%provider_name% Waxaa laga yaabaa inay ku jirta xayasiis",
            ),
        ),
        ServiceLabels(
            "afaanoromoo",
            prefixes=(
                "Madda suuraa", "Ibsa waa'ee suuraa", "Ibsa waa'ee viidiyoo", "Ibsa wa'ee raadiyoo",
                "Ibsa suuraa/viidiyoo",
            ),
            byline_prefixes=(
                "Barreessaa", "Odeeffannoo barreeffamichaa", "Maxxanfame", "Gabaasni irraati", "Gahee",
                "Haaromsameera",
            ),
            lines=(
                "Odeessa kana irratti dabalata", "Mata dureewwan walitti dhiyaatan", "Isin hin darbiin",
                "Baay'ee kan jaalatame", "Baay'ee kan dubbifame", "Beeksiisa",
                "Meeshaan kee Miidiyaa taphachiisuu hin danda'u", "Qabiyyee kun hinjiraatu",
                "Qabiyyeen kun taphachuu kan hin jire dha ammayyuu.",
                "Hubachiisa: qabiyyeen qaama sadaffaa beeksisa qabaachuu malu",
                "Hubachiisa: Qabiyyee marsariitiiwwan alaatiif BBCn itti gaafatamummaa hin fudhatu.",
                "Qabiyyeewwan maddawwan alaa irraa ta'aniif BBCn itti gaafatamaa miti.",
                "Qabiyyeen kun hin argamne", "Daataa qusachuuf barreeffama qofa dubbisi",
            ),
            patterns=(
                "Maxxansa %provider_name% irra dabri", "Xumura maxxansa %provider_name%",
                "irratti dabalatan ilaali %provider_name%", "%provider_name% beeksisa qabaachuu danda'a.",
            ),
        ),
        ServiceLabels(
            "tigrinya",
            prefixes=("ምንጪ ስእሊ", "መግለጺ ስእሊ", "መግለጺ ቪድዮ", "መግለጺ ድምጺ", "መግለጺ"),
            byline_prefixes=("ዝተመሓየሸ",),
            lines=(
                "ተዛማዲ ትሕዝቶ", "ተዛማዲ ዛዕባታት", "ዜናታት", "ብብዝሒ ዝተነበ", "ብብዝሒ ዝተራእየ", "መላለዪ",
                "ትጥቀምሉ ዘለኹም መሳርሒ ኣይተቐበሎን።", "እዚ እትደልይዎ ዘለኹም ትሕዝቶ የለን", "እዚ ትሕዝቶ ንምጽዋት የለን፡፡",
                "Warning: ቢቢሲ ኣብ ካልእ ገጻት ንዘሎ ሓበሬታ ሓላፍነት ኣይወስድን።", "ቢቢሲ፡ ንትሕዝቶ ካልኦት መርበባት ሓበሬታ ሓላፍነት ኣይወስድን።",
                "ኣዘራረብቲ ዛዕባታት",
            ),
            patterns=("ትሕዝቶ %provider_name% መወዓውዒታት ክህልዎ ይኽእል'ዩ።",),
        ),
        ServiceLabels(
            "gahuza",
            prefixes=("Ahavuye isanamu", "Insiguro y'isanamu", "Insiguro ya video", "Insiguro y'amajwi", "Insiguro"),
            byline_prefixes=(
                "Umwanditsi", "Ibiranga iyi nkuru", "Yatangajwe", "Yakoze inkuru ari", "Igikorwa", "Vyavuguruwe",
            ),
            lines=(
                "Ibindi bisa n’ibi", "Inkuru iri kw'isonga", "Ibisomwa cane", "Kwamamaza", "Ibikinwa",
                "Kina amajwi", "Kina amasanamu", "Ntibishobora gukina mu cuma cawe", "Ibi ntibikiboneka.",
                "Ibi ntibiraboneka ngo bikinwe.",
                "Uragaba: Ibitangwa n'izindi mbuga bishobora kubamwo gutangaza",
                "Uragaba: BBC ntibazwa ibiva ku zindi mbuga.", "BBC ntibazwa ibivuye ku zindi mbuga.",
                "Ibi ntibiboneka", "Ivyo BBC Gahuza ibahitiramwo",
            ),
            patterns=(
                "Tambuka %provider_name% ubutumwa", "Impera ya %provider_name% ubutumwa",
                "Raba ibindi kuri %provider_name%",
                "Ibiri kuri %provider_name% birashobora kubamwo kuranga ibicuruzwa.",
            ),
        ),
    )
}


def line_key(line: str) -> str:
    """The form labels and recurring lines are compared in: NFC, casefolded, one space, no end colon."""
    key = " ".join(unicodedata.normalize("NFC", line).casefold().split())
    # ’ and ' both occur in the same label on different pages
    return key.replace("’", "'").rstrip(" :：፡")


@dataclass(frozen=True)
class LabelMatcher:
    prefixes: tuple[str, ...]
    byline_prefixes: tuple[str, ...]
    lines: frozenset[str]
    patterns: re.Pattern[str] | None

    def is_furniture(self, line: str) -> bool:
        key = line_key(line)
        if not key:
            return False
        if key in self.lines:
            return True
        if self.patterns is not None and self.patterns.fullmatch(key):
            return True
        if key.startswith(self.prefixes) and _label_boundary(key, self.prefixes):
            return True
        return (
            bool(self.byline_prefixes)
            and key.startswith(self.byline_prefixes)
            and len(key.split()) <= BYLINE_MAX_WORDS
            and _label_boundary(key, self.byline_prefixes, allow_space=True)
        )


def _label_boundary(key: str, labels: tuple[str, ...], allow_space: bool = False) -> bool:
    # "bayani, ..." is a caption label; "bayanin da ya bayar" is prose.
    ends = ",:፣፡" + (" " if allow_space else "")
    return any(key.startswith(label) and (len(key) == len(label) or key[len(label)] in ends) for label in labels)


@functools.cache
def label_matcher(service: str | None) -> LabelMatcher | None:
    """The matcher of one service's labels (plus the English ones all services print); None if unknown."""
    labels = SERVICE_LABELS.get(service or "")
    if labels is None:
        return None
    patterns = [*_COMMON_PATTERNS, *labels.patterns]
    # %provider_name% is a social network's name: one to three words
    alternatives = "|".join(
        re.escape(line_key(p)).replace(re.escape(_PROVIDER.casefold()), r"\S+(?: \S+){0,2}") for p in patterns
    )
    return LabelMatcher(
        prefixes=tuple(sorted({line_key(p) for p in labels.prefixes}, key=len, reverse=True)),
        byline_prefixes=tuple(line_key(p) for p in labels.byline_prefixes),
        lines=frozenset(line_key(p) for p in (*_COMMON_LINES, *labels.lines)),
        patterns=re.compile(alternatives) if alternatives else None,
    )
