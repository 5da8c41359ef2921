"""Style families: the names a musician uses ("bossa nova", "big band"), each backed by MMA style files.

Every style file of MMA's library (``/usr/share/mma/lib/<lib>/<file>.mma``, named here ``lib/file``)
belongs to exactly one family, or is listed in :data:`EXCLUDED_FILES` with the reason. The table is the
vocabulary of the `song` model's style embedding and of the grooves corpus labels (docs/data.md, "Grooves").

Tempo ranges are quarter-note BPM of the notated bars the grooves corpus stores: MMA writes many 2/4 styles
(polka, march, samba, ragtime) as 4/4 bars, so their quarter-note tempo is twice the musician's, and 12/8
styles as 4/4 triplets counted in dotted quarters; 6/8 styles are stored as 6/8 (tempo of the quarter note,
1.5 x the dotted-quarter beat). :data:`TEMPO_OVERRIDES` narrows the family range for files whose own
documentation asks for another tempo.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from tunesmith.errors import ParameterError


@dataclass(frozen=True)
class StyleFamily:
    """One style family: id, display name, one-line description, its MMA style files and tempo range."""

    id: str
    name: str
    description: str
    files: tuple[str, ...]
    tempo: tuple[int, int]
    aliases: tuple[str, ...] = ()
    harmonic_rhythm: str = "half"
    lead: tuple[int, ...] = (0,)


def _f(id: str, name: str, description: str, files: str, tempo: tuple[int, int], aliases: str = "") -> StyleFamily:
    rhythm = next(r for r, ids in HARMONIC_RHYTHM.items() if id in ids)
    return StyleFamily(id, name, description, tuple(files.split()), tempo, tuple(a for a in aliases.split(",") if a),
                       rhythm, LEAD_PROGRAMS[id])


# How often a family's chords may change: on any "beat", at the "half" bar (a beat in 3/4 and 6/8 counts as
# the bar), or once a "bar". The grooves corpus reduces a progression to this rhythm (docs/data.md).
HARMONIC_RHYTHM: dict[str, tuple[str, ...]] = {
    "beat": ("swing", "big_band", "jazz", "bebop", "jazz_waltz", "ragtime", "gospel", "show_tune"),
    "half": ("blues", "boogie", "rock", "pop", "pop_ballad", "rnb_soul", "reggae_ska", "country", "bossa_nova",
             "samba", "latin", "tango", "latin_ballad", "waltz", "march", "folk", "polka", "fusion", "calypso"),
    "bar": ("metal", "funk", "house", "techno_trance", "hip_hop", "trip_hop", "drum_and_bass", "ambient"),
}

# General MIDI programs (0-based) that play a family's melody (lead) line, most typical first.
LEAD_PROGRAMS: dict[str, tuple[int, ...]] = {
    "swing": (65, 66, 56, 11), "big_band": (56, 65, 66, 57), "jazz": (66, 11, 0, 26, 73), "bebop": (65, 56),
    "jazz_waltz": (66, 73, 11), "blues": (22, 29, 66), "boogie": (0, 66), "ragtime": (0, 71),
    "rock": (29, 30, 27), "metal": (30, 29), "pop": (0, 4, 80, 81), "pop_ballad": (0, 40, 73, 71),
    "funk": (66, 4, 81, 56), "rnb_soul": (66, 4, 65), "reggae_ska": (56, 57, 16), "country": (110, 105, 22, 25),
    "bossa_nova": (73, 24, 66), "samba": (73, 56, 24), "latin": (56, 73, 0), "tango": (23, 40),
    "latin_ballad": (24, 40, 73), "waltz": (40, 21, 73), "march": (56, 72, 71), "house": (81, 80, 4),
    "techno_trance": (81, 80, 87), "hip_hop": (4, 80, 11), "trip_hop": (4, 11, 73), "drum_and_bass": (81, 80),
    "ambient": (75, 88, 11), "folk": (110, 73, 78, 21, 25), "gospel": (19, 0, 52), "polka": (21, 71, 56),
    "show_tune": (56, 71, 40, 0), "fusion": (4, 81, 66), "calypso": (114, 56, 73),
}


STYLE_FAMILIES: tuple[StyleFamily, ...] = (
    _f("swing", "Swing", "Swung eighths, ride cymbal and walking or two-beat bass: standards and easy swing",
       "stdlib/swing stdlib/easyswing stdlib/fastswing stdlib/68swing casio/swing casio/slowswing "
       "yamaha/jazzswing", (100, 200), "jazz swing,easy swing,shuffle swing"),
    _f("big_band", "Big band", "A swing band with brass and sax sections, Basie-style",
       "stdlib/bigband casio/fastbigband casio/middlebigband casio/slowbigband yamaha/jazzbasie", (90, 200),
       "bigband,swing band,basie"),
    _f("jazz", "Jazz", "Small-combo and trio jazz: piano or guitar comping, upright bass, brushes",
       "stdlib/jazzcombo stdlib/jazzguitar stdlib/mellowjazz stdlib/modernjazz stdlib/nitejazz stdlib/slowjazz "
       "stdlib/descendingjazz stdlib/evansish stdlib/folkyjazz stdlib/gypsyjazz stdlib/jazz-54 stdlib/dixie "
       "stdlib/desert casio/jazzcombo casio/modernjazz yamaha/jazzGrtrio yamaha/jazztrio yamaha/jazzbouncy "
       "zoom/jazz zoom/jazz04", (70, 180), "jazz trio,jazz combo,cool jazz,dixieland,gypsy jazz,jazz ballad"),
    _f("bebop", "Bebop", "Fast bebop: busy ride, walking bass, comping on the off-beats",
       "stdlib/bebop", (120, 150), "bop,be-bop,hard bop"),
    _f("jazz_waltz", "Jazz waltz", "Swung 3/4 with a jazz rhythm section",
       "stdlib/jazzwaltz stdlib/fastjazzwaltz stdlib/modernjazzwaltz casio/jazzwaltz yamaha/jazzwaltz",
       (110, 190), "jazz waltz,waltz jazz"),
    _f("blues", "Blues", "Twelve-bar blues and shuffles, slow to fast, in 4/4, 12/8 and 6/8",
       "stdlib/blues stdlib/blues128 stdlib/blues68 stdlib/slowblues stdlib/fastblues stdlib/countryblues "
       "casio/blues zoom/blues zoom/blues34 zoom/blues68 zoom/shuffle", (60, 150),
       "12 bar blues,twelve bar blues,slow blues,shuffle,blues shuffle"),
    _f("boogie", "Boogie-woogie", "Piano boogie-woogie and shuffle boogie with a rolling left hand",
       "stdlib/boggiewoggie stdlib/shuffleboggie casio/shuffleboogie", (110, 170),
       "boogie woogie,boogie-woogie,shuffle boogie"),
    _f("ragtime", "Ragtime", "Stride left hand and syncopated right hand, Joplin era",
       "stdlib/ragtime", (160, 220), "rag,stride"),
    _f("rock", "Rock", "Straight-eighth rock from 50s rock'n'roll and twist to hard rock and punk",
       "stdlib/50srock stdlib/60srock stdlib/8beat stdlib/basicrock stdlib/bubblerock stdlib/rock-128 "
       "stdlib/softrock stdlib/strut stdlib/twist stdlib/jive stdlib/rockwaltz casio/60srock casio/8beat1 "
       "casio/8beat2 casio/8beat3 casio/rock1 casio/rock2 casio/shufflerock casio/slowrock casio/twist "
       "kara/K50s_rock kara/fasttwist kara/twi pflib/8beat1 pflib/8beat2 pflib/rock1 pflib/highfive "
       "pflib/slowrock yamaha/w-rock zoom/rock zoom/rock34 zoom/beat8 zoom/hrk zoom/punk", (90, 170),
       "rock and roll,rock'n'roll,hard rock,punk,classic rock,soft rock,twist,doo-wop"),
    _f("metal", "Metal", "Heavy metal and thrash: distorted power chords, double kick",
       "casio/heavymetal casio/digitalrock pflib/metal1 pflib/metal2 zoom/mtl zoom/thr", (100, 190),
       "heavy metal,thrash,thrash metal"),
    _f("pop", "Pop", "Pop and pop-rock: 8- and 16-beat grooves, pop shuffles, 80s pop",
       "casio/pop casio/60spop casio/80spop casio/8beatpop1 casio/8beatpop2 casio/8beatpop3 casio/poprock1 "
       "casio/poprock2 casio/popshuffle1 casio/popshuffle2 casio/worldpop casio/16beat1 casio/16beat2 "
       "casio/16beat3 casio/16shuffle1 casio/16shuffle2 casio/slow16beat casio/electricpop casio/8beatdance "
       "stdlib/boneym kara/2beatp kara/happyshuffle pflib/16beat1 pflib/16beat2 zoom/pop zoom/beat16",
       (90, 135), "pop rock,pop song,disco,8 beat,16 beat,upbeat pop"),
    _f("pop_ballad", "Pop ballad", "Slow ballads: piano or guitar arpeggios, strings, soft drums",
       "stdlib/ballad stdlib/ballad128 stdlib/ballad68 stdlib/popballad stdlib/pianoballad stdlib/guitarballad "
       "stdlib/stringballad stdlib/rockballad stdlib/arpeggio44 stdlib/arpeggio68 casio/16beatballad1 "
       "casio/16beatballad2 casio/16beatballad3 casio/8beatballad1 casio/8beatballad2 casio/8beatballad3 "
       "casio/popballad casio/oldieballad casio/68ballad casio/serenade zoom/bald zoom/bald34", (56, 92),
       "ballad,power ballad,piano ballad,rock ballad,love song,slow song"),
    _f("funk", "Funk", "Syncopated sixteenth-note funk: slap bass, clavinet and guitar stabs, horns",
       "stdlib/bvfunk casio/funk1 casio/funk2 kara/Kfunk1 zoom/funk", (88, 125), "funky"),
    _f("rnb_soul", "R&B and soul", "Rhythm and blues, Motown, soul and disco-soul",
       "stdlib/rb stdlib/rb-ballad stdlib/dsoul casio/60ssoul casio/soul casio/soulpop casio/mellowrb "
       "casio/modernrb casio/r+b casio/discosoul kara/8beatmotown zoom/rnb", (66, 120),
       "r&b,rnb,rhythm and blues,soul,motown,neo soul,disco soul"),
    _f("reggae_ska", "Reggae and ska", "Off-beat guitar skank: ska (fast) and reggae (laid back)",
       "stdlib/ska zoom/ska zoom/reggae", (70, 220), "reggae,ska,dub,rocksteady"),
    _f("country", "Country", "Country, western swing, bluegrass and zydeco: train beats, boom-chick bass",
       "stdlib/countryswing stdlib/westernswing stdlib/countrywaltz stdlib/slowcountry stdlib/hillcountry "
       "stdlib/bluegrass stdlib/zydeco yamaha/western yamaha/jazzcountry kara/kwestballad zoom/country "
       "zoom/cntry", (70, 200), "western,bluegrass,country and western,zydeco,country swing,americana"),
    _f("bossa_nova", "Bossa nova", "Brazilian bossa nova: nylon guitar, rim-click clave, soft bass",
       "stdlib/bossanova kara/kbossa yamaha/jazzbossa zoom/bossa", (110, 145), "bossa,bossanova,jazz bossa"),
    _f("samba", "Samba", "Brazilian samba in 2 with surdo, shaker and syncopated comping",
       "stdlib/samba yamaha/quando-g.s280 zoom/samba", (160, 230), "samba,batucada"),
    _f("latin", "Latin", "Afro-Cuban and Caribbean dance rhythms: salsa, mambo, son, cha-cha, rhumba, merengue",
       "stdlib/afro-cuban stdlib/chacha stdlib/cubanguitar stdlib/mambo stdlib/merengue stdlib/rhumba "
       "stdlib/jazzrhumba stdlib/salsa stdlib/son stdlib/latinwaltz stdlib/lfusion casio/latinfusion "
       "yamaha/mambo yamaha/salsa1 yamaha/salsa2 zoom/latin zoom/afro", (90, 200),
       "salsa,mambo,son,cha-cha,cha cha,chacha,rhumba,rumba,merengue,afro-cuban,afro cuban,cuban,latin jazz"),
    _f("tango", "Tango", "Argentine tango: marcato accents, bandoneon-like comping",
       "stdlib/tango stdlib/lighttango", (110, 135), "argentine tango"),
    _f("latin_ballad", "Latin ballad", "Slow Latin dance ballads: bolero and beguine",
       "stdlib/beguine stdlib/bolero stdlib/slowbolero", (70, 125), "bolero,beguine"),
    _f("waltz", "Waltz", "Waltzes in 3/4: Viennese, French musette, pop and plain",
       "stdlib/waltz stdlib/fastwaltz stdlib/vienesewaltz stdlib/frenchwaltz stdlib/arpeggiowaltz "
       "casio/popwaltz", (84, 190), "viennese waltz,musette,3/4,slow waltz"),
    _f("march", "March", "Marches: military, Sousa, German, Dixieland and Broadway marches",
       "stdlib/march stdlib/68march stdlib/bwmarch stdlib/dixiemarch casio/march1 casio/germanmarch",
       (100, 240), "military march,sousa,marching band,parade"),
    _f("house", "House", "Four-on-the-floor house and dance-pop: kick on every beat, off-beat hats",
       "casio/house casio/latinhouse casio/dancepop1 casio/dancepop2 casio/dancepop3 zoom/house zoom/dance",
       (115, 130), "house music,deep house,dance,edm,dance pop,latin house"),
    _f("techno_trance", "Techno and trance", "Electronic techno, trance and rave: sequenced synths, steady kick",
       "stdlib/trance casio/techno casio/trance1 casio/trance2 casio/rave casio/dance1 casio/dance2 "
       "alexis/teamtechno zoom/techno", (120, 150), "techno,trance,rave,electronic,electronica"),
    _f("hip_hop", "Hip hop", "Hip-hop beats: swung or straight boom-bap drums, sparse bass",
       "alexis/hiphop casio/hip-hop zoom/hiphop", (80, 100), "hip-hop,hiphop,rap,boom bap,lo-fi,lofi,lo-fi hip hop"),
    _f("trip_hop", "Trip hop", "Slow, dark downtempo grooves with electronic arpeggios",
       "casio/triphop zoom/trip", (70, 100), "trip-hop,triphop,downtempo"),
    _f("drum_and_bass", "Drum and bass", "Fast breakbeat drum patterns (drums only in MMA's library)",
       "zoom/dnb", (160, 180), "drum & bass,drum n bass,dnb,d&b,jungle"),
    _f("ambient", "Ambient", "Casio's 'ambient' electronic sets and Zoom's ambient drum patterns: soft electronic "
       "grooves", "casio/ambient1 casio/ambient2 casio/ambient3 zoom/ambient", (70, 120),
       "chillout,chill,atmospheric"),
    _f("folk", "Folk", "Acoustic folk: finger-picked or strummed guitar, folk rock, lullabies, folk percussion",
       "stdlib/folk stdlib/folkballad stdlib/folkrock stdlib/bluefolk stdlib/lullaby zoom/mide", (70, 150),
       "acoustic,folk rock,singer-songwriter,lullaby,celtic,world,middle eastern"),
    _f("gospel", "Gospel", "Hymns and spirituals: organ, piano, choir pads",
       "stdlib/hymn stdlib/spiritual stdlib/popspiritual stdlib/slowspiritual", (60, 180),
       "hymn,spiritual,church,chorale,choir"),
    _f("polka", "Polka", "Oom-pah polkas in 2, written as fast 4/4",
       "stdlib/polka casio/polka casio/polkafox casio/poppolka", (180, 260), "oom-pah,oompah"),
    _f("show_tune", "Show tune", "Broadway and ballroom: show tunes, foxtrot, quickstep, charleston, soft shoe",
       "stdlib/broadway stdlib/slowbroadway stdlib/broadwaywaltz stdlib/showtune stdlib/foxtrot casio/foxtrot "
       "stdlib/quickstep casio/quickstep stdlib/charleston stdlib/softshoe", (90, 280),
       "broadway,musical,foxtrot,quickstep,charleston,soft shoe,ballroom,showtune"),
    _f("fusion", "Fusion", "Jazz-rock fusion: rock drums, jazz harmony, sixteenth-note grooves",
       "casio/fusion stdlib/jazzrock zoom/fusion zoom/fus16", (90, 130), "jazz rock,jazz-rock,jazz fusion"),
    _f("calypso", "Calypso", "Caribbean calypso: bright, syncopated, steel-drum friendly",
       "stdlib/calypso", (100, 140), "soca,steel drum,caribbean"),
)

# Files whose own documentation asks for a tempo outside their family's range (quarter-note BPM as rendered).
TEMPO_OVERRIDES: dict[str, tuple[int, int]] = {
    "stdlib/fastswing": (200, 280),
    "casio/slowswing": (70, 110),
    "stdlib/68swing": (60, 100),
    "casio/fastbigband": (180, 240),
    "casio/middlebigband": (75, 95),
    "casio/slowbigband": (60, 85),
    "stdlib/slowjazz": (60, 100),
    "stdlib/jazzcombo": (140, 200),
    "stdlib/dixie": (180, 220),
    "stdlib/jazz-54": (100, 160),
    "stdlib/slowblues": (50, 80),
    "stdlib/fastblues": (140, 200),
    "stdlib/blues128": (50, 75),
    "stdlib/blues68": (60, 90),
    "stdlib/ballad128": (40, 65),
    "stdlib/ballad68": (60, 90),
    "stdlib/rock-128": (50, 80),
    "stdlib/rockballad": (60, 90),
    "stdlib/rockwaltz": (90, 160),
    "casio/slowrock": (60, 90),
    "pflib/slowrock": (60, 90),
    "kara/fasttwist": (130, 150),
    "kara/2beatp": (110, 130),
    "kara/Kfunk1": (100, 125),
    "kara/kbossa": (115, 130),
    "kara/kwestballad": (65, 100),
    "stdlib/ska": (180, 240),
    "zoom/reggae": (70, 95),
    "zoom/ska": (140, 200),
    "stdlib/slowcountry": (60, 90),
    "stdlib/countrywaltz": (90, 160),
    "stdlib/bluegrass": (150, 220),
    "yamaha/quando-g.s280": (80, 100),
    "stdlib/merengue": (220, 300),
    "stdlib/cubanguitar": (70, 100),
    "stdlib/latinwaltz": (90, 160),
    "stdlib/fastwaltz": (150, 200),
    "stdlib/vienesewaltz": (160, 200),
    "stdlib/march": (200, 240),
    "stdlib/bwmarch": (220, 260),
    "stdlib/68march": (150, 180),
    "stdlib/afro-cuban": (90, 130),
    "zoom/blues34": (60, 90),
    "zoom/blues68": (60, 90),
    "stdlib/broadway": (240, 290),
    "stdlib/slowbroadway": (90, 130),
    "stdlib/broadwaywaltz": (110, 160),
    "stdlib/showtune": (80, 130),
    "stdlib/quickstep": (180, 220),
    "casio/quickstep": (175, 200),
    "stdlib/charleston": (200, 280),
    "stdlib/foxtrot": (100, 130),
    "casio/foxtrot": (100, 130),
    "stdlib/softshoe": (100, 140),
    "stdlib/hymn": (60, 100),
    "stdlib/slowspiritual": (56, 80),
    "stdlib/popspiritual": (60, 90),
    "stdlib/spiritual": (120, 180),
    "stdlib/lullaby": (60, 90),
    "stdlib/folkballad": (60, 90),
}

EXCLUDED_FILES: dict[str, str] = {
    "stdlib/metronome": "click track for count-ins (4/4), not a style",
    "stdlib/metronome3": "click track for count-ins (3/4), not a style",
    "stdlib/metronome6": "click track for count-ins (6/8 ballads), not a style",
    "stdlib/metronome68": "click track for count-ins (6/8 waltzes), not a style",
    "stdlib/none": "an empty groove (silence), not a style",
    "zoom/count": "a stick count-in, not a style",
    "zoom/intro": "one-bar drum intros that belong to no style",
    "zoom/ending": "one-bar drum endings that belong to no style",
}

_BY_ID = {f.id: f for f in STYLE_FAMILIES}
_BY_FILE = {name: f for f in STYLE_FAMILIES for name in f.files}


def family(family_id: str) -> StyleFamily:
    """The family with this exact id."""
    if family_id not in _BY_ID:
        raise ParameterError(f"unknown style family {family_id!r}; families: {', '.join(_BY_ID)}", field="style")
    return _BY_ID[family_id]


def family_of_file(style_file: str) -> StyleFamily | None:
    """The family of an MMA style file ("stdlib/bossanova"), or None if it is excluded or unknown."""
    return _BY_FILE.get(style_file)


def tempo_range(style_file: str) -> tuple[int, int]:
    """The sensible quarter-note tempo range of a style file as MMA renders it."""
    if style_file in TEMPO_OVERRIDES:
        return TEMPO_OVERRIDES[style_file]
    owner = family_of_file(style_file)
    if owner is None:
        raise ParameterError(f"style file {style_file!r} belongs to no style family", field="style")
    return owner.tempo


def _normalize(text: str) -> str:
    return re.sub(r"[\s_\-']+", " ", text.strip().lower()).strip()


def resolve_family(text: str) -> StyleFamily:
    """A family from what a user typed: its id, display name or an alias ("bossa nova", "R&B", "lo-fi").

    An unknown name raises a `ParameterError` that lists the families and names the nearest one.
    """
    wanted = _normalize(text)
    for fam in STYLE_FAMILIES:
        names = (fam.id, fam.name, *fam.aliases)
        if wanted in {_normalize(n) for n in names}:
            return fam
    choices = {_normalize(n): fam for fam in STYLE_FAMILIES for n in (fam.id, fam.name, *fam.aliases)}
    nearest = difflib.get_close_matches(wanted, list(choices), n=1, cutoff=0.0)
    hint = f"; nearest: {choices[nearest[0]].id!r}" if nearest else ""
    raise ParameterError(
        f"unknown style {text!r}{hint}; choose one of: {', '.join(f.id for f in STYLE_FAMILIES)}", field="style"
    )
