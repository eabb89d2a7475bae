"""PowerPoint 97-2003 record types ([MS-PPT] 2.13.24 RecordType, [MS-ODRAW] 2.1.4) and their sizes.

A record whose type is not listed here is not understood and is dropped (with a note); a listed
atom whose length is not the one the specification fixes makes the file unrebuildable.
"""
from __future__ import annotations

# type -> (name, fixed body length or None). Lengths are enforced only where the rebuild reads
# the record or where a wrong length would shift what follows.
TYPES: dict[int, tuple[str, int | None]] = {
    0x03E8: ("Document", None), 0x03E9: ("DocumentAtom", 40), 0x03EA: ("EndDocumentAtom", 0),
    0x03EE: ("Slide", None), 0x03EF: ("SlideAtom", 24), 0x03F0: ("Notes", None), 0x03F1: ("NotesAtom", 8),
    0x03F2: ("Environment", None), 0x03F3: ("SlidePersistAtom", 20), 0x03F8: ("MainMaster", None),
    0x03F9: ("SlideShowSlideInfoAtom", None), 0x03FA: ("SlideViewInfo", None), 0x03FB: ("GuideAtom", None),
    0x03FD: ("ViewInfoAtom", None), 0x03FE: ("SlideViewInfoAtom", None), 0x03FF: ("VbaInfo", None),
    0x0400: ("VbaInfoAtom", 12), 0x0401: ("SlideShowDocInfoAtom", None), 0x0402: ("Summary", None),
    0x0406: ("DocRoutingSlipAtom", None), 0x0407: ("OutlineViewInfo", None), 0x0408: ("SorterViewInfo", None),
    0x0409: ("ExObjList", None), 0x040A: ("ExObjListAtom", 4), 0x040B: ("DrawingGroup", None),
    0x040C: ("Drawing", None), 0x040D: ("GridSpacing10Atom", None), 0x040E: ("RoundTripTheme12Atom", None),
    0x040F: ("RoundTripColorMapping12Atom", None), 0x0410: ("NamedShows", None), 0x0411: ("NamedShow", None),
    0x0412: ("NamedShowSlidesAtom", None), 0x0413: ("NotesTextViewInfo9", None),
    0x0414: ("NormalViewSetInfo9", None), 0x0415: ("NormalViewSetInfo9Atom", None),
    0x041C: ("RoundTripOriginalMainMasterId12Atom", None), 0x041D: ("RoundTripCompositeMasterId12Atom", None),
    0x041E: ("RoundTripContentMasterInfo12Atom", None), 0x041F: ("RoundTripShapeId12Atom", None),
    0x0420: ("RoundTripHFPlaceholder12Atom", None), 0x0422: ("RoundTripContentMasterId12Atom", None),
    0x0423: ("RoundTripOArtTextStyles12Atom", None), 0x0424: ("RoundTripHeaderFooterDefaults12Atom", None),
    0x0425: ("RoundTripDocFlags12Atom", None), 0x0426: ("RoundTripShapeCheckSumForCL12Atom", None),
    0x0427: ("RoundTripNotesMasterTextStyles12Atom", None), 0x0428: ("RoundTripCustomTableStyles12Atom", None),
    0x07D0: ("List", None), 0x07D5: ("FontCollection", None), 0x07D6: ("FontCollection10", None),
    0x07E3: ("BookmarkCollection", None), 0x07E4: ("SoundCollection", None), 0x07E5: ("SoundCollectionAtom", None),
    0x07E6: ("Sound", None), 0x07E7: ("SoundDataBlob", None), 0x07E9: ("BookmarkSeedAtom", None),
    0x07F0: ("ColorSchemeAtom", 32), 0x07F8: ("BlipCollection9", None), 0x07F9: ("BlipEntity9Atom", None),
    0x0BC1: ("ExObjRefAtom", 4), 0x0BC3: ("PlaceholderAtom", 8), 0x0BDB: ("ShapeAtom", None),
    0x0BDC: ("ShapeFlags10Atom", None), 0x0BDD: ("RoundTripNewPlaceholderId12Atom", None),
    0x0F9E: ("OutlineTextRefAtom", None), 0x0F9F: ("TextHeaderAtom", 4), 0x0FA0: ("TextCharsAtom", None),
    0x0FA1: ("StyleTextPropAtom", None), 0x0FA2: ("MasterTextPropAtom", None), 0x0FA3: ("TextMasterStyleAtom", None),
    0x0FA4: ("TextCharFormatExceptionAtom", None), 0x0FA5: ("TextParagraphFormatExceptionAtom", None),
    0x0FA6: ("TextRulerAtom", None), 0x0FA7: ("TextBookmarkAtom", None), 0x0FA8: ("TextBytesAtom", None),
    0x0FA9: ("TextSpecialInfoDefaultAtom", None), 0x0FAA: ("TextSpecialInfoAtom", None),
    0x0FAB: ("DefaultRulerAtom", None), 0x0FAC: ("StyleTextProp9Atom", None), 0x0FAD: ("TextMasterStyle9Atom", None),
    0x0FAE: ("OutlineTextProps9", None), 0x0FAF: ("OutlineTextPropsHeader9Atom", None),
    0x0FB0: ("TextDefaults9Atom", None), 0x0FB1: ("StyleTextProp10Atom", None),
    0x0FB2: ("TextMasterStyle10Atom", None), 0x0FB3: ("OutlineTextProps10", None),
    0x0FB4: ("TextDefaults10Atom", None), 0x0FB5: ("OutlineTextProps11", None),
    0x0FB6: ("StyleTextProp11Atom", None), 0x0FB7: ("FontEntityAtom", 68), 0x0FB8: ("FontEmbedDataBlob", None),
    0x0FBA: ("CString", None), 0x0FC1: ("MetaFile", None), 0x0FC3: ("ExOleObjAtom", 24),
    0x0FC8: ("Kinsoku", None), 0x0FC9: ("Handout", None), 0x0FCC: ("ExOleEmbed", None),
    0x0FCD: ("ExOleEmbedAtom", 8), 0x0FCE: ("ExOleLink", None), 0x0FD0: ("BookmarkEntityAtom", None),
    0x0FD1: ("ExOleLinkAtom", None), 0x0FD2: ("KinsokuAtom", None), 0x0FD3: ("ExHyperlinkAtom", 4),
    0x0FD7: ("ExHyperlink", None), 0x0FD8: ("SlideNumberMCAtom", None), 0x0FD9: ("HeadersFooters", None),
    0x0FDA: ("HeadersFootersAtom", None), 0x0FDF: ("TextInteractiveInfoAtom", 8), 0x0FE4: ("ExHyperlink9", None),
    0x0FE7: ("RecolorInfoAtom", None), 0x0FEE: ("ExControl", None), 0x0FF0: ("SlideListWithText", None),
    0x0FF1: ("AnimationInfoAtom", None), 0x0FF2: ("InteractiveInfo", None), 0x0FF3: ("InteractiveInfoAtom", 16),
    0x0FF5: ("UserEditAtom", None), 0x0FF6: ("CurrentUserAtom", None), 0x0FF7: ("DateTimeMCAtom", None),
    0x0FF8: ("GenericDateMCAtom", None), 0x0FF9: ("HeaderMCAtom", None), 0x0FFA: ("FooterMCAtom", None),
    0x0FFB: ("ExControlAtom", 4), 0x1004: ("ExMediaAtom", 8), 0x1005: ("ExVideoContainer", None),
    0x1006: ("ExAviMovie", None), 0x1007: ("ExMCIMovie", None), 0x100D: ("ExMIDIAudio", None),
    0x100E: ("ExCDAudio", None), 0x100F: ("ExWAVAudioEmbedded", None), 0x1010: ("ExWAVAudioLink", None),
    0x1011: ("ExOleObjStg", None), 0x1012: ("ExCDAudioAtom", None), 0x1013: ("ExWAVAudioEmbeddedAtom", None),
    0x1014: ("AnimationInfo", None), 0x1015: ("RTFDateTimeMCAtom", None), 0x1018: ("ExHyperlinkFlagsAtom", None),
    0x1388: ("ProgTags", None), 0x1389: ("ProgStringTag", None), 0x138A: ("ProgBinaryTag", None),
    0x138B: ("BinaryTagDataBlob", None), 0x1770: ("PrintOptionsAtom", None), 0x1772: ("PersistDirectoryAtom", None),
    0x177A: ("PresentationAdvisorFlags9Atom", None), 0x177B: ("HtmlDocInfo9Atom", None),
    0x177C: ("HtmlPublishInfoAtom", None), 0x177D: ("HtmlPublishInfo9", None), 0x177E: ("BroadcastDocInfo9", None),
    0x177F: ("BroadcastDocInfo9Atom", None), 0x1784: ("EnvelopeFlags9Atom", None), 0x1785: ("EnvelopeData9Atom", None),
    0x2AFB: ("VisualShapeAtom", None), 0x2B00: ("HashCodeAtom", None), 0x2B01: ("VisualPageAtom", None),
    0x2B02: ("BuildList", None), 0x2B03: ("BuildAtom", None), 0x2B04: ("ChartBuild", None),
    0x2B05: ("ChartBuildAtom", None), 0x2B06: ("DiagramBuild", None), 0x2B07: ("DiagramBuildAtom", None),
    0x2B08: ("ParaBuild", None), 0x2B09: ("ParaBuildAtom", None), 0x2B0A: ("LevelInfoAtom", None),
    0x2B0B: ("RoundTripAnimationAtom12Atom", None), 0x2B0D: ("RoundTripAnimationHashAtom12Atom", None),
    0x2EE0: ("Comment10", None), 0x2EE1: ("Comment10Atom", None), 0x2EE4: ("CommentIndex10", None),
    0x2EE5: ("CommentIndex10Atom", None), 0x2EE6: ("LinkedShape10Atom", None), 0x2EE7: ("LinkedSlide10Atom", None),
    0x2EEA: ("SlideFlags10Atom", None), 0x2EEB: ("SlideTime10Atom", None), 0x2EEC: ("DiffTree10", None),
    0x2EED: ("Diff10", None), 0x2EEE: ("Diff10Atom", None), 0x2EEF: ("SlideListTableSize10Atom", None),
    0x2EF0: ("SlideListEntry10Atom", None), 0x2EF1: ("SlideListTable10", None),
    0x2F14: ("CryptSession10Container", None), 0x32C8: ("FontEmbedFlags10Atom", None),
    0x36B0: ("FilterPrivacyFlags10Atom", None), 0x36B1: ("DocToolbarStates10Atom", None),
    0x36B2: ("PhotoAlbumInfo10Atom", None), 0x36B3: ("SmartTagStore11Container", None),
    0x3714: ("RoundTripSlideSyncInfo12", None), 0x3715: ("RoundTripSlideSyncInfoAtom12", None),
    # Animation (PowerPoint 2002+ timing, inside ___PPT10 binary tags)
    **{t: (f"Time{t:04X}", None) for t in range(0xF125, 0xF146)},
    # OfficeArt
    0xF000: ("OfficeArtDggContainer", None), 0xF001: ("OfficeArtBStoreContainer", None),
    0xF002: ("OfficeArtDgContainer", None), 0xF003: ("OfficeArtSpgrContainer", None),
    0xF004: ("OfficeArtSpContainer", None), 0xF005: ("OfficeArtSolverContainer", None),
    0xF006: ("OfficeArtFDGGBlock", None), 0xF007: ("OfficeArtFBSE", None), 0xF008: ("OfficeArtFDG", 8),
    0xF009: ("OfficeArtFSPGR", 16), 0xF00A: ("OfficeArtFSP", 8), 0xF00B: ("OfficeArtFOPT", None),
    0xF00D: ("OfficeArtClientTextbox", None), 0xF00F: ("OfficeArtChildAnchor", 16),
    0xF010: ("OfficeArtClientAnchor", None), 0xF011: ("OfficeArtClientData", None),
    0xF012: ("OfficeArtFConnectorRule", None), 0xF014: ("OfficeArtFArcRule", None),
    0xF017: ("OfficeArtFCalloutRule", None), 0xF118: ("OfficeArtFRITContainer", None),
    0xF119: ("OfficeArtFDGSL", None), 0xF11A: ("OfficeArtColorMRUContainer", None),
    0xF11D: ("OfficeArtFPSPL", None), 0xF11E: ("OfficeArtSplitMenuColorContainer", None),
    0xF121: ("OfficeArtSecondaryFOPT", None), 0xF122: ("OfficeArtTertiaryFOPT", None),
    **{t: ("OfficeArtBlip", None) for t in (0xF01A, 0xF01B, 0xF01C, 0xF01D, 0xF01E, 0xF01F, 0xF029, 0xF02A)},
}

# The persist objects a presentation shows; other persist object types are not carried over.
SHOWN_PERSISTS = {0x03E8, 0x03EE, 0x03F0, 0x03F8, 0x0FC9}

# Office 2007 round-trip data: zipped OOXML parts PowerPoint 2007+ reads instead of the binary records.
ROUND_TRIP_PACKAGES = {0x040E, 0x040F, 0x041E, 0x0423, 0x0427, 0x0428, 0x2B0B, 0x3714}

RT = {name: t for t, (name, _size) in TYPES.items()}
