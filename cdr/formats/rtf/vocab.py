"""What the RTF rebuild may write: control words, destinations and control symbols (RTF 1.9.1 names).

Kept: text, characters, paragraphs, sections, tables, lists, footnotes, headers and footers, bookmarks,
comments, the font, colour, style, list and revision tables, document information, pictures, shapes
and fields (whose instructions the field rules judge). Everything else a reader would act on or that
carries opaque data (objects, embedded fonts, theme and data-store blobs, XML and HTML tags, macros of
form fields, math, document variables, hyperlink bases) is left out, as is every word we do not know.
"""
from __future__ import annotations

import re


def _words(text: str) -> frozenset[bytes]:
    return frozenset(w.encode() for w in text.split())


# Destinations kept (the first control word of a group, after an optional \*).
ALLOWED_DEST = _words("""
    rtf fonttbl falt panose fname colortbl stylesheet keycode latentstyles lsdlockedexcept defchp defpap
    listtable list listlevel leveltext levelnumbers listname liststylename listpicture listoverridetable
    listoverride lfolevel listtext pntext pn pntxta pntxtb pnseclvl revtbl rsidtbl generator pgptbl pgp
    info title subject author manager company operator category keywords comment doccomm creatim revtim printim
    buptim userprops propname staticval linkval
    header headerl headerr headerf footer footerl footerr footerf footnote ftnsep ftnsepc ftncn aftnsep
    aftnsepc aftncn
    field fldinst fldrslt datafield formfield ffname ffdeftext ffhelptext ffstattext ffl ffformat flymaincnt
    bkmkstart bkmkend annotation atnid atnauthor atndate atnref atnparent atntime atrfstart atrfend
    xe txe rxe tc tcn
    pict picprop blipuid shppict nonshppict shp shpinst shprslt shptxt shpgrp sp sn sv
    upr ud nesttableprops nonesttables oldcprops oldpprops oldsprops oldtprops
    wgrffmtfilter pgdsctbl pgdsc fchars lchars
""")

# Style sheet entries written as {\*\cs10 ...}, {\*\ts11 ...}, {\*\ds12 ...}: starred, yet ordinary
# words elsewhere (\cs10 applies the character style), so they never start a destination of their own.
STARRED_WORDS = _words("cs ts ds")

# Destinations we know and leave out, with their whole group. (Objects, \*\datastore and \*\template are
# removed earlier, with their own threat ids.)
DROPPED_DEST = _words("""
    object objdata objclass objname objalias objsect objtime result oleclsid datastore template
    themedata colorschememapping xmlnstbl xmlns xmlopen xmlclose xmlname xmlattrname xmlattrvalue
    htmltag mhtmltag hlinkbase hl hlfr hlsrc hlloc docvar fontemb fontfile file filetbl nextfile
    ffentrymcr ffexitmcr fldtype protusertbl password passwordhash writereservation writereservhash
    factoidname mmath mmathPr mmathPict ebcstart ebcend do dptxbxtext private windowcaption mvfmf mvfml
    mvtof mvtol bkmkpub xform svb
""")

# Every word that starts a destination: a reader switches the rest of its group to it wherever it sits.
DESTINATIONS = ALLOWED_DEST | DROPPED_DEST

_CHARACTER = """
    plain b i ul ulnone uld uldb uldash uldashd uldashdd ulhair ulhwave ulldash ulth ulthd ulthdash
    ulthdashd ulthdashdd ulthldash ululdbwave ulw ulwave ulc strike striked caps scaps outl shad embo impr
    v webhidden f fs cf cb cs highlight chcbpat chcfpat chshdng chbrdr up dn sub super nosupersub expnd
    expndtw kerning charscalex lang langfe langnp langfenp noproof rtlch ltrch fcs hich dbch loch insrsid
    charrsid delrsid af afs ab ai acf acaps adn aexpnd aoutl ascaps ashad astrike aul auld auldb aulnone aulw
    aup alang accnone accdot acccomma acccircle accunderdot g cgrid gcw horzvert twoinone fittext
    deleted revised revauth revdttm revauthdel revdttmdel crauth crdate animtext cchs
    ansi mac pc pca u uc
"""
_SPECIAL = """
    par line tab page sect column cell row nestcell nestrow lbr chdate chdpl chdpa chtime chpgn sectnum chftn
    chatn chftnsep chftnsepc emdash endash emspace enspace qmspace bullet lquote rquote ldblquote rdblquote
    zwj zwnj zwbo zwnbo ltrmark rtlmark softpage softcol softline softlbr
"""
_PARAGRAPH = """
    pard s ql qr qj qc qd qk qt fi li ri lin rin cufi culi curi sb sa sl slmult sbauto saauto lisa lisb keep
    keepn widctlpar nowidctlpar hyphpar nooverflow noline outlinelevel intbl itap pagebb level contextualspace
    adjustright aspalpha aspnum faauto fahang facenter faroman favar fafixed nosnaplinegrid nocwrap nowwrap
    ltrpar rtlpar yts spv tx tb tqr tqc tqdec tldot tlhyph tlul tlth tleq tlmdot ls ilvl box brsp shading
    cfpat cbpat prauth prdate pararsid absw absh abslock phmrg phpg phcol pvmrg pvpg pvpara posx posy posxc
    posxi posxo posxr posxl posyb posyc posyil posyin posyout posyt posnegx posnegy dxfrtext dfrmtxtx dfrmtxty
    nowrap dropcapli dropcapt absnoovrlp frmtxlrtb frmtxtbrl frmtxbtlr frmtxlrtbv frmtxtbrlv wrapdefault
    wraparound wraptight wrapthrough overlay collapsed indmirror ipgp jclisttab lvltentative nosectexpand
"""
_TABLE = """
    trowd irow irowband ts tsrowd trgaph trleft trqc trql trqr trrh trhdr trkeep trkeepfollow trautofit
    trwWidth trftsWidth trwWidthB trftsWidthB trwWidthA trftsWidthA trcbpat trcfpat trpat trshdng taprtl
    trauth trdate tdfrmtxtBottom tdfrmtxtLeft tdfrmtxtRight tdfrmtxtTop tphcol tphmrg tphpg tposnegx tposnegy
    tposx tposxc tposxi tposxl tposxo tposxr tposy tposyb tposyc tposyil tposyin tposyout tposyt tpvmrg
    tpvpara tpvpg tabsnoovrlp lastrow ltrrow rtlrow cellx clmgf clmrg clvmgf clvmrg clvertalt clvertalc
    clvertalb cltxlrtb cltxtbrl cltxbtlr cltxlrtbv cltxtbrlv cldglu cldgll clcbpat clcfpat clcbpatraw
    clcfpatraw clshdng clshdngraw clshdrawnil clwWidth clftsWidth clNoWrap clFitText clhidemark clins
    clinsauth clinsdttm cldel cldelauth cldeldttm clmrgd clmrgdauth clmrgddttm clsplit clsplitr tblind
    tblindtype tblrsid tscellwidth tscellwidthfts tsvertalt tsvertalc tsvertalb tsnowrap tscellcfpat
    tscellcbpat tscellpct tscbandsh tscbandsv tscfirstrow tsclastrow tscfirstcol tsclastcol tscnwcell
    tscnecell tscswcell tscsecell tsbgbdiag tsbgcross tsbgdcross tsbgdkbdiag tsbgdkcross tsbgdkdcross
    tsbgdkfdiag tsbgdkhor tsbgdkvert tsbgfdiag tsbghoriz tsbgvert
"""
_SECTION = """
    sectd endnhere binfsxn binsxn linemod linex linestarts linerestart lineppage linecont pgwsxn pghsxn
    marglsxn margrsxn margtsxn margbsxn guttersxn margmirsxn lndscpsxn titlepg headery footery vertalt
    vertalb vertalc vertalj sbknone sbkcol sbkpage sbkeven sbkodd cols colsx colno colsr colw linebetcol
    sectunlocked sectdefaultcl sectexpand sectlinegrid sectspecifycl sectspecifyl sectspecifygen ltrsect
    rtlsect stextflow horzsect vertsect srauth srdate sectrsid pgbrdrhead pgbrdrfoot pgbrdrt pgbrdrb pgbrdrl
    pgbrdrr pgbrdropt pgbrdrsnap
"""
_DOCUMENT = """
    rtf ansicpg deff adeff deflang deflangfe adeflang themelang themelangfe themelangcs stshfdbch stshfloch stshfhich stshfbi fbidis
    fnil froman fswiss fmodern fscript fdecor ftech fbidi fcharset fprq cpg fbias ftnil fttruetype
    fdbmajor fhimajor flomajor fbimajor fdbminor fhiminor flominor fbiminor
    red green blue ctint cshade cmaindarkone cmainlightone cmaindarktwo cmainlighttwo caccentone
    caccenttwo caccentthree caccentfour caccentfive caccentsix chyperlink cfollowedhyperlink
    cbackgroundone ctextone cbackgroundtwo ctexttwo
    additive sbasedon snext sautoupd shidden slink slocked spersonal scompose sreply styrsid ssemihidden
    sqformat spriority sunhideused alt shift ctrl fn
    yr mo dy hr min sec version vern edmins nofpages nofwords nofchars nofcharsws id proptype
    paperw paperh psz margl margr margt margb facingp gutter ogutter rtlgutter gutterprl margmirror landscape
    pgnstart widowctrl twoonone htmautsp deftab hyphhotz hyphconsec hyphcaps hyphauto linestart fracwidth
    makebackup defformat psover doctemp doctype viewkind viewscale viewzk viewbksp viewnobound rsidroot
    formshade formprot formdisp revprop revisions revprot revbar annotprot readprot lytexcttp
    lytprtmet lytcalctblwd lyttblrtgr ltrdoc rtldoc
    enddoc endnotes fet ftnalt aenddoc aendnotes aftnbj aftntj
    expshrtn noextrasprl prcolbl cvmme sprsspbf sprstsp sprslnsp sprsbsp sprstsm wraptrsp nocolbal
    notabind nouicompat nolnhtadjtbl nojkernpunct jcompress jexpand lnongrid dntblnsbdb transmf
    truncex truncatefontheight subfontbysize swpbdr splytwnine ftnlytwnine useltbaln alntblind lnbrkrule
    nobrkwrptbl snaptogridincell allowfieldendsel wrppunct asianbrkrule newtblstyruls nogrowautofit
    usenormstyforlist noindnmbrts felnbrelev nocxsptable indrlsweleven noafcnsttbl afelev utinl hwelev
    spltpgpar notcvasp notbrkcnstfrctbl notvatxbx krnprsnet cachedcolbal nofeaturethrottle ilfomacatclnup
    trackmoves trackformatting donotembedsysfont relyonvml donotembedlingdata grfdocevents validatexml
    showplaceholdtext ignoremixedcontent saveinvalidxml showxmlerrors horzdoc vertdoc
    donotshowmarkup donotshowcomments donotshowinsdel donotshowprops dghspace dgvspace dghorigin dgvorigin
    dghshow dgvshow dgsnap dgmargin bdbfhdr bdrrlswsix oldas oldlinewrap otblrul pgbrdrsnap rempersonalinfo
    brkfrm htmautsp lytcalctblwd msmcap noxlattoyen noultrlspc nospaceforul nolead nobrkwrptbl
    lnbrkrule linkstyles hyphcaps sprsbsp emfblip gutterprl ksulang allprot annotprot protlevel
    stylelock stylelockenforced stylelockqfset stylesortmethod stylelockbackcomp stylelocktheme
    autofmtoverride ApplyBrkRules rsltbmp rslthtml rsltmerge rsltpict rsltrtf rslttxt
    fromtext horzvert pgdscno pgdscuse pgdscnxt rsid
"""
_PICTURE = """
    picw pich picwgoal pichgoal picscalex picscaley picscaled piccropt piccropb piccropl piccropr picbmp
    picbpp bliptag blipupi bin emfblip pngblip jpegblip macpict pmmetafile wmetafile dibitmap wbitmap
    wbmbitspixel wbmplanes wbmwidthbytes defshp picprop shplid shpleft shptop shpright shpbottom shpfhdr
    shpbxpage shpbxmargin shpbxcolumn shpbxignore shpbypage shpbymargin shpbypara shpbyignore shpwr shpwrk
    shpfblwtxt shpz shplockanchor shptxt
"""
_FIELD_AND_MISC = """
    fldedit fldlock flddirty fldpriv fftype ffownhelp ffownstat ffprot ffsize fftypetxt ffrecalc
    ffhaslistbox ffmaxlen ffhps ffdefres ffres ffhpsz
    bkmkcolf bkmkcoll xef tcf tcl atnicn bxe ixe yxe fldalt
    bookfold bookfoldrev bookfoldsheets chhres clmrgdr dfrauth dfrdate dfrstart dfrstop dfrxst disabled
    enforceprot readonlyrecommended fjgothic fjminchou forceupgrade gridtbl jsksu mvauth mvdate mvf mvt
    nocompatoptions noqfpromote pichGoal picwGoal pindtabqc pindtabql pindtabqr pmartabqc pmartabql pmartabqr
    ptabldot ptablmdot ptablminus ptablnone ptabluscore remdttm saveprevpict sbys sectspecifygenN softlheight
    tcelld toplinepunct txbxtwalways txbxtwfirst txbxtwfirstlast txbxtwlast txbxtwno vertal wbmwidthbyte
    wpeqn wpjst wpsp flyvert flyhorz flyanchor
"""

# Ordinary words, written wherever they occur. Value-less words and words with a number alike.
ALLOWED_WORDS = _words(" ".join((_CHARACTER, _SPECIAL, _PARAGRAPH, _TABLE, _SECTION, _DOCUMENT, _PICTURE,
                                  _FIELD_AND_MISC))) - DESTINATIONS | STARRED_WORDS

# Families of words the specification names systematically: borders, shading patterns, footnote and page
# numbering formats, the old paragraph numbering (\pn...), list levels, latent styles, table cell and row
# paddings, spacings and borders. None of them starts a destination or carries data.
ALLOWED_WORD_PATTERN = re.compile(
    rb"(?:brdr[a-z]*|(?:ch|cl|ts|tr|rawcl)?bg[a-z]+|tscband[a-z]+|tr(?:pado|spo)[a-z]*|s?a?ftn[a-z]*|pgn[a-z]*|pn[a-z]*|level[a-z]*|list[a-z]*"
    rb"|lsd[a-z]*|(?:cl|ts)(?:pad|sp)[a-z]*|tscell[a-z]*|(?:cl|ts|tr)brdr[a-z]*|trpadd[a-z]*|trspd[a-z]*|tbllk[a-z]*"
    rb"|(?:ins|del|char|para|sect|tbl|style|row|style)rsid|brdrart)\Z")


def word_allowed(word: bytes) -> bool:
    return word in ALLOWED_WORDS or (word not in DESTINATIONS and ALLOWED_WORD_PATTERN.match(word) is not None)


# Control symbols a reader turns into text or layout; \* only where it starts a kept destination.
ALLOWED_SYMBOLS = frozenset((b"\\\\", b"\\{", b"\\}", b"\\~", b"\\-", b"\\_", b"\\:", b"\\|", b"\\\n", b"\\\r",
                             b"\\\t"))


# Shape property names (the NAME of {\sp{\sn NAME}{\sv VALUE}}), after the "Shape properties" tables of the
# Word RTF specification 1.9.1 (drawing object properties: position, object type, lock, text box, geometric
# text, picture, geometry, fill, line, shadow, perspective, 3-D, connector, callout, group, horizontal rule,
# wrapping), cross-checked with the table of the Ted word processor's RTF reader (docRtfShapeTab.c).
# Compared exactly, as Word and LibreOffice's reader do (case matters). Left out: hyperlinks on shapes
# (pihlShape), opaque blobs (metroBlob, ink and signature data, diagram layouts), print-time picture links
# (pibPrint...). pibName, fillBlipName and lineFillBlipName stay listed: a remote one is removed before (as
# rtf.remote_template), a local one only names the file the picture was inserted from.
_SHAPE_PROP_NAMES = """
    shapeType ShapeType rotation fFlipH fFlipV fRelFlipH fRelFlipV wzName wzDescription
    posh posrelh posv posrelv fUseShapeAnchor fLayoutInCell fAllowOverlap fChangePage fPseudoInline
    dhgt sizerelh sizerelv pctHoriz pctVert pctHorizPos pctVertPos
    fBehindDocument fIsButton fHidden fReallyHidden fArrowheadsOK fBackground fDeleteAttachedObject
    fEditedWrap fHitTestFill fHitTestLine fInitiator fNoFillHitTest fNoHitTestPicture fNoLineDrawDash
    fOleIcon fOnDblClickNotify fOneD fPreferRelativeResize fPreferRelativeSize fPrint fIsBullet
    fScriptAnchor fFakeMaster fCameFromImgDummy fUserDrawn fRecolorFillAsPicture
    hspMaster hspNext xLimo yLimo bWMode bWModePureBW bWModeBW
    dxWrapDistLeft dyWrapDistTop dxWrapDistRight dyWrapDistBottom pWrapPolygonVertices
    fLockRotation fLockAspectRatio fLockAgainstSelect fLockCropping fLockVerticies fLockText
    fLockAdjustHandles fLockAgainstGrouping fLockShapeType fLockPosition fLockAgainstUngrouping
    dxTextLeft dyTextTop dxTextRight dyTextBottom scaleText lTxid WrapText anchorText txflTextFlow cdirFont
    fAutoTextMargin fRotateText fSelectText fFitShapeToText fFitTextToShape idLinkedNext
    gtextUNICODE gtextRTF gtextAlign gtextSize gtextSpacing gtextFont gtextFReverseRows fGtext
    gtextFVertical gtextFKern gtextFTight gtextFStretch gtextFShrinkFit gtextFBestFit gtextFNormalize
    gtextFDxMeasure gtextFBold gtextFItalic gtextFUnderline gtextFShadow gtextFSmallcaps
    gtextFStrikethrough
    pib pibName pibFlags cropFromTop cropFromBottom cropFromLeft cropFromRight pictureTransparent
    pictureContrast pictureBrightness pictureGamma pictureId pictureDblCrMod pictureFillCrMod
    pictureLineCrMod pictureGray pictureBiLevel pictureActive
    geoLeft geoTop geoRight geoBottom shapePath pVerticies pSegmentInfo pAdjustHandles pGuides pInscribe
    pConnectionSites pConnectionSitesDir pRectangles adjustValue adjust2Value adjust3Value adjust4Value
    adjust5Value adjust6Value adjust7Value adjust8Value adjust9Value adjust10Value
    fShadowOK f3DOK fLineOK fGtextOK fFillShadeShapeOK fFillOK
    fillType fillColor fillOpacity fillBackColor fillBackOpacity fillCrMod fillBlip fillBlipName
    fillBlipFlags fillblipflags fillWidth fillHeight fillAngle fillFocus fillToLeft fillToTop fillToRight
    fillToBottom fillRectLeft fillRectTop fillRectRight fillRectBottom fillDztype fillShadePreset
    fillShadeColors fillOriginX fillOriginY fillShapeOriginX fillShapeOriginY fillShadeType fFilled
    fillShape fillUseRect fillColorExt fillColorExtCMY fillColorExtK fillColorExtMod
    fillBackColorExt fillBackColorExtCMY fillBackColorExtK fillBackColorExtMod
    lineColor lineOpacity lineBackColor lineCrMod lineType lineFillBlip lineFillBlipName
    lineFillBlipFlags lineblipflags lineFillWidth lineFillHeight lineFillDztype lineWidth lineMiterLimit
    lineStyle lineDashing lineDashStyle lineStartArrowhead lineEndArrowhead lineStartArrowWidth
    lineStartArrowLength lineEndArrowWidth lineEndArrowLength lineJoinStyle lineEndCapStyle fLine fline
    lineFillShape fLineUseShapeAnchor fColumnLineOK fColumnLine fLeftLine fTopLine fRightLine fBottomLine
    fColumnHitTestLine fLeftHitTestLine fTopHitTestLine fRightHitTestLine fBottomHitTestLine fInsetPen
    fLeftInsetPen fTopInsetPen fRightInsetPen fBottomInsetPen fInsetPenOK
    lineColorExt lineColorExtCMY lineColorExtK lineColorExtMod
    lineBackColorExt lineBackColorExtCMY lineBackColorExtK lineBackColorExtMod
    shadowType shadowColor shadowHighlight shadowCrMod shadowOpacity shadowOffsetX shadowOffsetY
    shadowSecondOffsetX shadowSecondOffsetY shadowScaleXToX shadowScaleYToX shadowScaleXToY
    shadowScaleYToY shadowPerspectiveX shadowPerspectiveY shadowWeight shadowOriginX shadowOriginY
    fShadow fshadowObscured shadowColorExt shadowColorExtCMY shadowColorExtK shadowColorExtMod
    shadowHighlightExt shadowHighlightExtCMY shadowHighlightExtK shadowHighlightExtMod
    perspectiveType perspectiveOffsetX perspectiveOffsetY perspectiveScaleXToX perspectiveScaleYToX
    perspectiveScaleXToY perspectiveScaleYToY perspectivePerspectiveX perspectivePerspectiveY
    perspectiveWeight perspectiveOriginX perspectiveOriginY fPerspective
    c3DSpecularAmt c3DDiffuseAmt c3DShininess c3DEdgeThickness c3DExtrudeForward c3DExtrudeBackward
    c3DExtrudePlane c3DExtrusionColor c3DCrMod f3D fc3DMetallic fc3DUseExtrusionColor fc3DLightFace
    c3DYRotationAngle c3DXRotationAngle c3DRotationAxisX c3DRotationAxisY c3DRotationAxisZ
    c3DRotationAngle c3DRotationCenterX c3DRotationCenterY c3DRotationCenterZ c3DRenderMode c3DTolerance
    c3DXViewpoint c3DYViewpoint c3DZViewpoint c3DOriginX c3DOriginY c3DSkewAngle c3DSkewAmount
    c3DAmbientIntensity c3DKeyX c3DKeyY c3DKeyZ c3DKeyIntensity c3DFillX c3DFillY c3DFillZ
    c3DFillIntensity fc3DConstrainRotation fc3DRotationCenterAuto fc3DParallel fc3DKeyHarsh
    fc3DFillHarsh fC3DRotationCenterAut c3DExtrusionColorExt c3DExtrusionColorExtCMY
    c3DExtrusionColorExtK c3DExtrusionColorExtMod
    cxk cxstyle spcot dxyCalloutGap spcoa spcod dxyCalloutDropSpecified dxyCalloutLengthSpecified
    fCallout fCalloutAccentBar fCalloutTextBorder fCalloutMinusX fCalloutMinusY fCalloutDropAuto
    fCalloutLengthSpecified
    groupLeft groupTop groupRight groupBottom relLeft relTop relRight relBottom relRotation
    fRelChangePage lidRegroup
    alignHR dxHeightHR dxWidthHR fHorizRule fStandardHR fNoshadeHR pctHR
    dgmt ccol dzColMargin
"""
# The per-side border lines of a text frame repeat the line properties with a side in their name.
_SIDED_LINE_PROPS = """
    BackColor BackColorExt BackColorExtCMY BackColorExtK BackColorExtMod Color ColorExt ColorExtCMY ColorExtK
    ColorExtMod CrMod Dashing EndArrowLength EndArrowWidth EndArrowhead EndCapStyle FillBlipFlags FillDztype
    FillHeight FillWidth MiterLimit Opacity StartArrowLength StartArrowWidth StartArrowhead Style Type Width
    FillShape
"""
SHAPE_PROPS = frozenset(_SHAPE_PROP_NAMES.split()) | frozenset(
    f"line{side}{p}" for side in ("Bottom", "Column", "Left", "Right", "Top") for p in _SIDED_LINE_PROPS.split())

# Picture types a \pict may name (the blip types of the specification) and the signature checked.
PICTURE_TYPES = {b"pngblip": "png", b"jpegblip": "jpeg", b"emfblip": "emf", b"wmetafile": "wmf",
                 b"dibitmap": "dib", b"wbitmap": "ddb", b"macpict": "pict", b"pmmetafile": "os2"}
