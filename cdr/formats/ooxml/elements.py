"""Element names each namespace defines (ECMA-376 and the Microsoft extensions, as the Open XML SDK's
schema data lists them): an element of an allowed namespace but a name it does not define is dropped.
Generated data; strict (purl.oclc.org) namespaces share their transitional twin's names (see vocab.py)."""
from __future__ import annotations

import functools

_NAMES = {
    "http://schemas.microsoft.com/office/2006/coverPageProps": (
        "Abstract CompanyAddress CompanyEmail CompanyFax CompanyPhone CoverPageProperties PublishDate "
    ),
    "http://schemas.microsoft.com/office/2020/mipLabelMetadata": (
        "ext extLst label labelList "
    ),
    "http://schemas.microsoft.com/office/drawing/2007/8/2/chart": (
        "dropZoneCategories dropZoneData dropZoneFilter dropZoneSeries dropZonesVisible inSketchMode "
        "invertSolidFillFmt pivotOptions showSketchBtn sketchOptions spPr style "
    ),
    "http://schemas.microsoft.com/office/drawing/2008/diagram": (
        "cNvGrpSpPr cNvPr cNvSpPr dataModelExt drawing extLst grpSp grpSpPr nvGrpSpPr nvSpPr sp spPr spTree "
        "style txBody txXfrm "
    ),
    "http://schemas.microsoft.com/office/drawing/2010/chartDrawing": (
        "cNvContentPartPr cNvPr contentPart extLst nvContentPartPr nvPr xfrm "
    ),
    "http://schemas.microsoft.com/office/drawing/2010/compatibility": (
        "compatSp "
    ),
    "http://schemas.microsoft.com/office/drawing/2010/diagram": (
        "cNvPr recolorImg "
    ),
    "http://schemas.microsoft.com/office/drawing/2010/main": (
        "artisticBlur artisticCement artisticChalkSketch artisticCrisscrossEtching artisticCutout "
        "artisticFilmGrain artisticGlass artisticGlowDiffused artisticGlowEdges artisticLightScreen "
        "artisticLineDrawing artisticMarker artisticMosiaicBubbles artisticPaintBrush artisticPaintStrokes "
        "artisticPastelsSmooth artisticPencilGrayscale artisticPencilSketch artisticPhotocopy "
        "artisticPlasticWrap artisticTexturizer artisticWatercolorSponge backgroundMark backgroundRemoval "
        "brightnessContrast cNvContentPartPr cNvPr cameraTool colorTemperature compatExt contentPart cpLocks "
        "extLst foregroundMark hiddenEffects hiddenFill hiddenLine hiddenScene3d hiddenSp3d imgEffect "
        "imgLayer imgProps isCanvas m nvContentPartPr saturation shadowObscured sharpenSoften useLocalDpi "
        "xfrm "
    ),
    "http://schemas.microsoft.com/office/drawing/2010/picture": (
        "extLst style "
    ),
    "http://schemas.microsoft.com/office/drawing/2010/slicer": (
        "extLst slicer "
    ),
    "http://schemas.microsoft.com/office/drawing/2012/chart": (
        "autoCat bubble3D cat categoryFilterException categoryFilterExceptions dLbl datalabelsRange "
        "dlblFTEntry dlblFieldTable dlblFieldTableCache dlblRangeCache explosion f filteredAreaSeries "
        "filteredBarSeries filteredBubbleSeries filteredCategoryTitle filteredLineSeries filteredPieSeries "
        "filteredRadarSeries filteredScatterSeries filteredSeriesTitle filteredSurfaceSeries formulaRef "
        "fullRef invertIfNegative layout leaderLines levelRef marker numFmt pivotSource ser "
        "showDataLabelsRange showLeaderLines spPr sqref tx txfldGUID xForSave "
    ),
    "http://schemas.microsoft.com/office/drawing/2012/chartStyle": (
        "axisTitle bodyPr categoryAxis chartArea chartStyle colorStyle dataLabel dataLabelCallout dataLabels "
        "dataPoint dataPoint3D dataPointLine dataPointMarker dataPointMarkerLayout dataPointWireframe "
        "dataSeries dataTable defRPr downBar dropLine effectRef errorBar extLst fillRef floor fontRef "
        "gridlineMajor gridlineMinor hiLoLine leaderLine legend lineWidthScale lnRef plotArea plotArea3D "
        "seriesAxis seriesLine spPr styleClr title trendline trendlineLabel upBar valueAxis variation view3D "
        "wall "
    ),
    "http://schemas.microsoft.com/office/drawing/2012/main": (
        "backgroundPr nonVisualGroupProps objectPr signatureLine "
    ),
    "http://schemas.microsoft.com/office/drawing/2012/timeslicer": (
        "extLst timeslicer "
    ),
    "http://schemas.microsoft.com/office/drawing/2014/chart": (
        "bubble3D categoryFilterException categoryFilterExceptions dLbl datapointuniqueidmap explosion "
        "filteredLitCache invertIfNegative literalDataChart marker multiLvlStrCache numCache pivotOptions16 "
        "ptentry ptidx showExpandCollapseFieldButtons spPr strCache uniqueID uniqueId "
    ),
    "http://schemas.microsoft.com/office/drawing/2014/chart/ac": (
        "multiLvlStrLit "
    ),
    "http://schemas.microsoft.com/office/drawing/2014/chartex": (
        "address aggregation axis axisId binCount binSize binary binning catScaling chart chartData "
        "chartSpace clear clrMapOvr copyright copyrights data dataId dataLabel dataLabelHidden dataLabels "
        "dataPt entityType evenFooter evenHeader ext extLst externalData extremeValue f firstFooter "
        "firstHeader fmtOvr fmtOvrs geoCache geoChildEntities geoChildEntitiesQuery "
        "geoChildEntitiesQueryResult geoChildEntitiesQueryResults geoChildTypes geoData geoDataEntityQuery "
        "geoDataEntityQueryResult geoDataEntityQueryResults geoDataPointQuery geoDataPointToEntityQuery "
        "geoDataPointToEntityQueryResult geoDataPointToEntityQueryResults geoEntity geoHierarchyEntity "
        "geoLocation geoLocationQuery geoLocationQueryResult geoLocationQueryResults geoLocations "
        "geoParentEntitiesQuery geoParentEntitiesQueryResult geoParentEntitiesQueryResults geoParentEntity "
        "geoPolygon geoPolygons geography headerFooter idx layoutPr legend lvl majorGridlines majorTickMarks "
        "max maxColor mid midColor min minColor minorGridlines minorTickMarks nf numDim numFmt number "
        "oddFooter oddHeader offset openxmlsdk_49BECFFA_3B03_4D13_8272_D6CCB22579E3 pageMargins pageSetup "
        "parentLabelLayout percent plotArea plotAreaRegion plotSurface printSettings pt regionLabelLayout "
        "rich separator series spPr statistics strDim subtotals tickLabels title tx txData txPr units "
        "unitsLabel v valScaling valueColorPositions valueColors visibility "
    ),
    "http://schemas.microsoft.com/office/drawing/2014/main": (
        "colId creationId cxnDERefs predDERef rowId "
    ),
    "http://schemas.microsoft.com/office/drawing/2016/11/diagram": (
        "autoBuNodeInfo autoBuNodeInfoLst buPr "
    ),
    "http://schemas.microsoft.com/office/drawing/2016/11/main": (
        "picAttrSrcUrl "
    ),
    "http://schemas.microsoft.com/office/drawing/2016/12/diagram": (
        "lstStyle spPr "
    ),
    "http://schemas.microsoft.com/office/drawing/2016/SVG/main": (
        "svgBlip "
    ),
    "http://schemas.microsoft.com/office/drawing/2017/03/chart": (
        "dataDisplayOptions16 dispNaAsBlank "
    ),
    "http://schemas.microsoft.com/office/drawing/2017/decorative": (
        "decorative "
    ),
    "http://schemas.microsoft.com/office/drawing/2017/model3d": (
        "ambientLight attrSrcUrl blip camera clr dirLight ext extLst illuminance intensity lookAt "
        "meterPerModelUnit model3d objViewport orthographic perspective pos postTrans preTrans ptLight raster "
        "rot scale spPr spotLight sx sy sz trans unkLight up winViewport "
    ),
    "http://schemas.microsoft.com/office/drawing/2018/animation": (
        "animPr extLst "
    ),
    "http://schemas.microsoft.com/office/drawing/2018/animation/model3d": (
        "animPr embedAnim extLst posterFrame "
    ),
    "http://schemas.microsoft.com/office/drawing/2018/hyperlinkcolor": (
        "hlinkClr "
    ),
    "http://schemas.microsoft.com/office/drawing/2018/sketchyshapes": (
        "extLst lineSketchCurved lineSketchFreehand lineSketchNone lineSketchScribble lineSketchStyleProps "
        "seed type "
    ),
    "http://schemas.microsoft.com/office/drawing/2020/classificationShape": (
        "classification "
    ),
    "http://schemas.microsoft.com/office/excel/2006/main": (
        "col colSortMap f macrosheet row rowSortMap sqref worksheetSortMap "
    ),
    "http://schemas.microsoft.com/office/excel/2010/spreadsheetDrawing": (
        "cNvContentPartPr cNvPr contentPart extLst nvContentPartPr nvPr xfrm "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2010/main": (
        "bmk bmkLst bmkTgt browseMode cNvContentPartPr cNvPr conveyor creationId defaultImageDpi "
        "discardImageEditData doors extLst fade ferris flash flip flythrough gallery glitter honeycomb "
        "laserClr laserTraceLst media modId nullEvt nvContentPartPr nvPr pan pauseEvt playEvt prism resumeEvt "
        "reveal ripple section sectionLst sectionPr seekEvt showEvtLst showMediaCtrls shred sldId sldIdLst "
        "stopEvt switch tracePt tracePtLst triggerEvt trim vortex warp wheelReverse window xfrm "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2012/main": (
        "chartTrackingRefBased clr extLst guide notesGuideLst parentCm presenceInfo prstTrans sldGuideLst "
        "threadingInfo "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2015/main": (
        "designElem "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2017/10/main": (
        "readonlyRecommended "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2017/3/main": (
        "track trackLst tracksInfo "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2018/4/main": (
        "classification "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2018/8/main": (
        "author authorLst cm cmLst commentRel extLst pos reply replyLst txBody unknownAnchor "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2019/12/main": (
        "add anchr asgn atrbtn comment date event extLst history pcntCmplt pri taskHistoryDetails title "
        "unAsgn unasgnAll undo unknown "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2020/02/main": (
        "designPr designTag designTagLst extLst "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2021/06/main": (
        "add anchr asgn atrbtn comment date event extLst history pcntCmplt pri taskHistoryDetails title "
        "unAsgn unasgnAll undo unknown "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2022/03/main": (
        "extLst instance reactions rxn "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2022/08/main": (
        "add anchr asgn atrbtn comment date event extLst history pcntCmplt taskDetails title unasgnAll undo "
        "unknown "
    ),
    "http://schemas.microsoft.com/office/powerpoint/2023/02/main": (
        "cameo phTypeExt type unknown "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2009/9/main": (
        "argumentDescription argumentDescriptions axisColor borderColor cacheField cacheHierarchy "
        "calculatedMember calculatedMembers cfIcon cfRule cfvo color colorAxis colorFirst colorHigh colorLast "
        "colorLow colorMarkers colorNegative colorScale colorSeries conditionalFormat conditionalFormats "
        "conditionalFormatting conditionalFormattings connection customFilter customFilters data dataBar "
        "dataField dataValidation dataValidations datastoreItem definedName definedNames dxf dxfs editValue "
        "extLst fillColor filter formControlPr formula1 formula2 header headers i iconFilter iconSet id "
        "ignoredError ignoredErrors item itemLst items level levels negativeBorderColor negativeFillColor "
        "olap oleItem p pivotArea pivotAreas pivotCacheDefinition pivotCaches pivotChange pivotChanges "
        "pivotEdit pivotEdits pivotField pivotHierarchy pivotTable pivotTableDefinition pivotTables "
        "protectedRange protectedRanges range ranges row rowItem rows selection selections setLevel setLevels "
        "slicer slicerCache slicerCacheDefinition slicerCaches slicerList slicerStyle slicerStyleElement "
        "slicerStyleElements slicerStyles slicers sortCondition sourceConnection sparkline sparklineGroup "
        "sparklineGroups sparklines table tabular tupleItem tupleItems tupleSet userEdit values workbookPr "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2010/11/main": (
        "activeTabTopLevelEntity autoFilter bounds c cacheHierarchy cachedUniqueName cachedUniqueNames "
        "calculatedMember connection dataFeedPr dataField dataModel dbCommand dbTable dbTables descriptionPr "
        "dxfs extLst modelRelationship modelRelationships modelTable modelTables modelTextPr "
        "movingPeriodState oledbPr pivotCacheDecoupled pivotCacheIdVersion pivotCaches pivotFilter pivotRow "
        "pivotTable pivotTableData pivotTableReference pivotTableReferences pivotTableServerFormats "
        "pivotTableUISettings pivotTables queryTable question questionPr questions questionsPr rangePr "
        "selection serverFormat slicerCacheHideItemsWithNoData slicerCacheOlapLevelName "
        "slicerCachePivotTables slicerCaches state survey surveyPr tableSlicerCache textPr timeline "
        "timelineCacheDefinition timelineCachePivotCaches timelineCacheRef timelineCacheRefs "
        "timelinePivotCacheDefinition timelineRef timelineRefs timelineStyle timelineStyleElement "
        "timelineStyleElements timelineStyles timelines titlePr v webExtension webExtensions workbookPr x "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2011/1/ac": (
        "list "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2014/11/main": (
        "calculatedTimeColumn modelTimeGrouping modelTimeGroupings "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2014/revision": (
        "autoFilter body c ccse comments dataValidation dxf extLst f formula freezePanes future hdr "
        "hideUnhideSheet hyperlink is link oartAnchor objectState outline outlines pivotTableDefinition ref "
        "refmap revHdrs revStream revisionPtr rowColVisualOps sheetUid showGridlinesHeadings sparklineGroup "
        "test v xrrDefName xrrList xrrListExpR xrrSheet xrrTrim xrrUspt xrrc xrrco xrrdo xrrf xrrftr xrrg "
        "xrrm xrrrc xrrtest "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2016/pivotdefaultlayout": (
        "pivotTableDefinition16 "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2017/dynamicarray": (
        "dynamicArrayProperties extLst "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2017/richdata": (
        "extLst fb k rv rvData rvStructures rvb s v "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2017/richdata2": (
        "a arrayData customFilter customFilters dateGroupItem dxfs dynamicFilter extLst filter filterColumn "
        "filters flag global k key keyFlags rPr rSty richProperties richSortCondition richStyleSheet "
        "richStyles rpv rvTypesInfo s spb spbArrays spbData spbStructures supportingPropertyBags top10 type "
        "types v "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2018/calcfeatures": (
        "calcFeatures feature "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments": (
        "ThreadedComments extLst mention mentions person personList text threadedComment "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2019/namedsheetviews": (
        "columnFilter dxf extLst filter namedSheetView namedSheetViews nsvFilter richSortCondition "
        "sortCondition sortRule sortRules "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2020/pivotNov2020": (
        "dataFieldFutureData ignorableAfterVersion implicitMeasureSupport "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2020/richvaluerefresh": (
        "refreshInterval refreshIntervals "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2020/threadedcomments2": (
        "checksum extLst hyperlink "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2022/featurepropertybag": (
        "DXFComplement FeaturePropertyBags a b bag bagExt bagId columnBodyRevDxf columnHeaderRevDxf "
        "columnTotalsRevDxf d dataRevDxf dxf extLst fpbs headerRowBorderRevDxf headerRowRevDxf i rel revdxf s "
        "tableBorderRevDxf totalsRowBorderRevDxf totalsRowRevDxf xfComplement "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2022/pivotRichData": (
        "richInfo "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2022/pivotVersionInfo": (
        "cacheVersionInfo lastRefreshFeature lastUpdateFeature pivotVersionInfo requiredFeature "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2022/richvaluerel": (
        "extLst rel richValueRels "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2023/pivot2023Calculation": (
        "aggregationInfo featureSupportInfo pivotAreaReferenceSubtotals pivotFieldSubtotalLineItems "
        "pivotFieldSubtotals subtotal subtotalLineItem "
    ),
    "http://schemas.microsoft.com/office/spreadsheetml/2024/pivotDynamicArrays": (
        "pivotCacheDynamicArray "
    ),
    "http://schemas.microsoft.com/office/thememl/2012/main": (
        "extLst themeFamily themeVariant themeVariantLst "
    ),
    "http://schemas.microsoft.com/office/word/2006/wordml": (
        "acd acdEntry acdManifest acds active docEvents eventDocBuildingBlockAfterInsert eventDocClose "
        "eventDocContentControlAfterInsert eventDocContentControlBeforeDelete "
        "eventDocContentControlContentUpdate eventDocContentControlOnEnter eventDocContentControlOnExit "
        "eventDocNew eventDocOpen eventDocStoreUpdate eventDocSync eventDocXmlAfterInsert "
        "eventDocXmlBeforeDelete fci hash keymap keymaps keymapsBad macro mcd mcds recipientData recipients "
        "tcg toolbarData toolbars vbaSuppData wch wll "
    ),
    "http://schemas.microsoft.com/office/word/2010/wordml": (
        "alpha bevel bevelB bevelT cNvContentPartPr cNvPr camera checkbox checked checkedState cntxtAlts "
        "conflictDel conflictIns conflictMode contentPart contourClr customXmlConflictDelRangeEnd "
        "customXmlConflictDelRangeStart customXmlConflictInsRangeEnd customXmlConflictInsRangeStart "
        "defaultImageDpi discardImageEditingData docId entityPicker extLst extrusionClr fillToRect glow "
        "gradFill gs gsLst hueMod ligatures lightRig lin lum lumMod lumOff miter noFill numForm numSpacing "
        "nvContentPartPr path props3d prstDash reflection rot round sat satMod satOff scene3d schemeClr shade "
        "shadow solidFill srgbClr styleSet stylisticSets textFill textOutline tint uncheckedState xfrm "
    ),
    "http://schemas.microsoft.com/office/word/2010/wordprocessingCanvas": (
        "bg extLst graphicFrame whole wpc "
    ),
    "http://schemas.microsoft.com/office/word/2010/wordprocessingDrawing": (
        "pctHeight pctPosHOffset pctPosVOffset pctWidth sizeRelH sizeRelV "
    ),
    "http://schemas.microsoft.com/office/word/2010/wordprocessingGroup": (
        "cNvFrPr cNvGrpSpPr cNvPr extLst graphicFrame grpSp grpSpPr wgp xfrm "
    ),
    "http://schemas.microsoft.com/office/word/2010/wordprocessingShape": (
        "bodyPr cNvCnPr cNvPr cNvSpPr extLst linkedTxbx spPr style txbx wsp "
    ),
    "http://schemas.microsoft.com/office/word/2012/wordml": (
        "appearance chartTrackingRefBased collapsed color commentEx commentsEx dataBinding "
        "doNotAllowInsertDeleteSection docId footnoteColumns people person presenceInfo repeatingSection "
        "repeatingSectionItem sectionTitle webExtensionCreated webExtensionLinked "
    ),
    "http://schemas.microsoft.com/office/word/2012/wordprocessingDrawing": (
        "webVideoPr "
    ),
    "http://schemas.microsoft.com/office/word/2015/wordml/symex": (
        "symEx "
    ),
    "http://schemas.microsoft.com/office/word/2016/wordml/cid": (
        "commentId commentsIds "
    ),
    "http://schemas.microsoft.com/office/word/2018/wordml": (
        "ext "
    ),
    "http://schemas.microsoft.com/office/word/2018/wordml/cex": (
        "commentExtensible commentsExtensible extLst "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/chart": (
        "applyToEnd applyToFront applyToSides area3DChart areaChart auto autoTitleDeleted autoUpdate axId "
        "axPos backWall backward bandFmt bandFmts bar3DChart barChart barDir baseTimeUnit bubble3D "
        "bubbleChart bubbleScale bubbleSize builtInUnit cat catAx chart chartObject chartSpace clrMapOvr "
        "crossAx crossBetween crosses crossesAt custSplit custUnit dLbl dLblPos dLbls dPt dTable data "
        "date1904 dateAx delete depthPercent dispBlanksAs dispEq dispRSqr dispUnits dispUnitsLbl "
        "doughnutChart downBars dropLines errBarType errBars errDir errValType evenFooter evenHeader "
        "explosion ext extLst externalData f firstFooter firstHeader firstSliceAng floor fmtId formatCode "
        "formatting forward gapDepth gapWidth grouping h hMode hPercent headerFooter hiLowLines holeSize idx "
        "intercept invertIfNegative lang layout layoutTarget lblAlgn lblOffset leaderLines legacyDrawingHF "
        "legend legendEntry legendPos line3DChart lineChart logBase lvl majorGridlines majorTickMark "
        "majorTimeUnit majorUnit manualLayout marker max min minorGridlines minorTickMark minorTimeUnit "
        "minorUnit minus multiLvlStrCache multiLvlStrRef name noEndCap noMultiLvlLbl numCache numFmt numLit "
        "numRef oddFooter oddHeader ofPieChart ofPieType order orientation overlap overlay pageMargins "
        "pageSetup period perspective pictureFormat pictureOptions pictureStackUnit pie3DChart pieChart "
        "pivotFmt pivotFmts pivotSource plotArea plotVisOnly plus printSettings protection pt ptCount rAngAx "
        "radarChart radarStyle rich rotX rotY roundedCorners scaling scatterChart scatterStyle secondPiePt "
        "secondPieSize selection separator ser serAx serLines shape showBubbleSize showCatName "
        "showDLblsOverMax showHorzBorder showKeys showLeaderLines showLegendKey showNegBubbles showOutline "
        "showPercent showSerName showVal showVertBorder sideWall size sizeRepresents smooth spPr splitPos "
        "splitType stockChart strCache strLit strRef style surface3DChart surfaceChart symbol thickness "
        "tickLblPos tickLblSkip tickMarkSkip title trendline trendlineLbl trendlineType tx txPr upBars "
        "upDownBars userInterface userShapes v val valAx varyColors view3D w wMode wireframe x xMode xVal y "
        "yMode yVal "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/chartDrawing": (
        "absSizeAnchor blipFill cNvCxnSpPr cNvGraphicFramePr cNvGrpSpPr cNvPicPr cNvPr cNvSpPr cxnSp ext from "
        "graphicFrame grpSp grpSpPr nvCxnSpPr nvGraphicFramePr nvGrpSpPr nvPicPr nvSpPr pic relSizeAnchor sp "
        "spPr style to txBody x xfrm y "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/compatibility": (
        "legacyDrawing "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/diagram": (
        "adj adjLst alg animLvl animOne bg bulletEnabled cat catLst chMax chPref choose clrData colorsDef "
        "colorsDefHdr colorsDefHdrLst constr constrLst cxn cxnLst dataModel desc dir effectClrLst else ext "
        "extLst fillClrLst forEach hierBranch if layoutDef layoutDefHdr layoutDefHdrLst layoutNode linClrLst "
        "orgChart param prSet presLayoutVars presOf pt ptLst relIds resizeHandles rule ruleLst sampData "
        "scene3d shape sp3d spPr style styleData styleDef styleDefHdr styleDefHdrLst styleLbl t title "
        "txEffectClrLst txFillClrLst txLinClrLst txPr varLst whole "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/lockedCanvas": (
        "lockedCanvas "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/main": (
        "accent1 accent2 accent3 accent4 accent5 accent6 ahLst ahPolar ahXY alpha alphaBiLevel alphaCeiling "
        "alphaFloor alphaInv alphaMod alphaModFix alphaOff alphaOutset alphaRepl anchor arcTo audioCd "
        "audioFile avLst backdrop band1H band1V band2H band2V bevel bevelB bevelT bgClr bgFillStyleLst "
        "biLevel bldChart bldDgm blend blip blipFill blue blueMod blueOff blur bodyPr bottom br buAutoNum "
        "buBlip buChar buClr buClrTx buFont buFontTx buNone buSzPct buSzPts buSzTx cNvCxnSpPr "
        "cNvGraphicFramePr cNvGrpSpPr cNvPicPr cNvPr cNvSpPr camera cell3D chExt chOff chart close clrChange "
        "clrFrom clrMap clrRepl clrScheme clrTo comp cont contourClr cs cubicBezTo custClr custClrLst "
        "custDash custGeom cxn cxnLst cxnSp cxnSpLocks defPPr defRPr dgm dk1 dk2 ds duotone ea effect "
        "effectDag effectLst effectRef effectStyle effectStyleLst end endCxn endParaRPr ext extLst "
        "extraClrScheme extraClrSchemeLst extrusionClr fgClr fill fillOverlay fillRect fillRef fillStyleLst "
        "fillToRect firstCol firstRow flatTx fld fmtScheme folHlink font fontRef fontScheme gamma gd gdLst "
        "glow gradFill graphic graphicData graphicFrame graphicFrameLocks gray grayscl green greenMod "
        "greenOff gridCol grpFill grpSp grpSpLocks grpSpPr gs gsLst headEnd highlight hlink hlinkClick "
        "hlinkHover hlinkMouseOver hsl hslClr hue hueMod hueOff innerShdw insideH insideV inv invGamma "
        "lastCol lastRow latin left lightRig lin ln lnB lnBlToTr lnDef lnL lnR lnRef lnSpc lnStyleLst lnT "
        "lnTlToBr lnTo lstStyle lt1 lt2 lum lumMod lumOff lvl1pPr lvl2pPr lvl3pPr lvl4pPr lvl5pPr lvl6pPr "
        "lvl7pPr lvl8pPr lvl9pPr majorFont masterClrMapping minorFont miter moveTo neCell noAutofit noFill "
        "norm normAutofit nvCxnSpPr nvGraphicFramePr nvGrpSpPr nvPicPr nvSpPr nwCell objectDefaults off "
        "outerShdw overrideClrMapping p pPr path pathLst pattFill pic picLocks pos prstClr prstDash prstGeom "
        "prstShdw prstTxWarp pt quadBezTo quickTimeFile r rPr rect red redMod redOff reflection relOff right "
        "rot round rtl sat satMod satOff scene3d schemeClr scrgbClr seCell shade snd softEdge solidFill sp "
        "sp3d spAutoFit spDef spLocks spPr spcAft spcBef spcPct spcPts srcRect srgbClr st stCxn stretch style "
        "swCell sx sy sym sysClr t tab tabLst tableStyle tableStyleId tailEnd tbl tblBg tblGrid tblPr "
        "tblStyle tblStyleLst tc tcBdr tcPr tcStyle tcTxStyle theme themeElements themeManager themeOverride "
        "tile tileRect tint tl2br top tr tr2bl txBody txDef txSp uFill uFillTx uLn uLnTx up useSpRect "
        "videoFile wavAudioFile wholeTbl xfrm "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/picture": (
        "blipFill cNvPicPr cNvPr nvPicPr pic spPr "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing": (
        "absoluteAnchor blipFill cNvCxnSpPr cNvGraphicFramePr cNvGrpSpPr cNvPicPr cNvPr cNvSpPr clientData "
        "col colOff contentPart cxnSp ext from graphicFrame grpSp grpSpPr nvCxnSpPr nvGraphicFramePr "
        "nvGrpSpPr nvPicPr nvSpPr oneCellAnchor pic pos row rowOff sp spPr style to twoCellAnchor txBody wsDr "
        "xfrm "
    ),
    "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing": (
        "align anchor cNvGraphicFramePr docPr effectExtent extent inline lineTo posOffset positionH positionV "
        "simplePos start wrapNone wrapPolygon wrapSquare wrapThrough wrapTight wrapTopAndBottom "
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/bibliography": (
        "AbbreviatedCaseNumber AlbumTitle Artist Author BookAuthor BookTitle BroadcastTitle Broadcaster "
        "CaseNumber ChapterNumber City Comments Compiler Composer Conductor ConferenceName Corporate Counsel "
        "CountryRegion Court Day DayAccessed Department Director Distributor Edition Editor First Guid "
        "Institution InternetSiteTitle Interviewee Interviewer Inventor Issue JournalName LCID Last Medium "
        "Middle Month MonthAccessed NameList NumberVolumes Pages PatentNumber Performer PeriodicalTitle "
        "Person ProducerName ProductionCompany PublicationTitle Publisher RecordingNumber RefOrder Reporter "
        "ShortTitle Source SourceType Sources StandardNumber StateProvince Station Tag Theater ThesisType "
        "Title Translator Type URL Version Volume Writer Year YearAccessed "
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties": (
        "Properties property "
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/customXml": (
        "datastoreItem schemaRef schemaRefs "
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes": (
        "array blob bool bstr cf clsid cy date decimal empty error filetime i1 i2 i4 i8 int lpstr lpwstr null "
        "oblob ostorage ostream r4 r8 storage stream ui1 ui2 ui4 ui8 uint variant vector vstream "
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties": (
        "AppVersion Application Characters CharactersWithSpaces Company DigSig DocSecurity HLinks "
        "HeadingPairs HiddenSlides HyperlinkBase HyperlinksChanged Lines LinksUpToDate MMClips Manager Notes "
        "Pages Paragraphs PresentationFormat Properties ScaleCrop SharedDoc Slides Template TitlesOfParts "
        "TotalTime Words "
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/math": (
        "acc accPr aln alnScr argPr argSz bar barPr baseJc begChr borderBox borderBoxPr box boxPr brk brkBin "
        "brkBinSub cGp cGpRule cSp chr count ctrlPr d dPr defJc deg degHide den diff dispDef e endChr eqArr "
        "eqArrPr f fName fPr func funcPr groupChr groupChrPr grow hideBot hideLeft hideRight hideTop intLim "
        "interSp intraSp jc lMargin lim limLoc limLow limLowPr limUpp limUppPr lit m mPr mathFont mathPr "
        "maxDist mc mcJc mcPr mcs mr nary naryLim naryPr noBreak nor num oMath oMathPara oMathParaPr objDist "
        "opEmu phant phantPr plcHide pos postSp preSp r rMargin rPr rSp rSpRule rad radPr sPre sPrePr sSub "
        "sSubPr sSubSup sSubSupPr sSup sSupPr scr sepChr show shp smallFrac strikeBLTR strikeH strikeTLBR "
        "strikeV sty sub subHide sup supHide t transp type vertJc wrapIndent wrapRight zeroAsc zeroDesc "
        "zeroWid "
    ),
    "http://schemas.openxmlformats.org/presentationml/2006/main": (
        "anim animClr animEffect animMotion animRot animScale attrName attrNameLst audio bg bgPr bgRef "
        "bldAsOne bldDgm bldGraphic bldLst bldOleChart bldP bldSub blinds blipFill bodyStyle bold boldItalic "
        "boolVal browse by cBhvr cMediaNode cNvCxnSpPr cNvGraphicFramePr cNvGrpSpPr cNvPicPr cNvPr cNvSpPr "
        "cSld cSldViewPr cTn cViewPr charRg checker childTnLst circle clrMap clrMapOvr clrMru clrVal cm "
        "cmAuthor cmAuthorLst cmLst cmd comb cond contentPart control controls cover custData custDataLst "
        "custShow custShowLst cut cxnSp defaultTextStyle diamond dissolve embed embeddedFont embeddedFontLst "
        "endCondLst endSnd endSync excl ext extLst fade fltVal font from graphicEl graphicFrame gridSpacing "
        "grpSp grpSpPr guide guideLst handoutMaster handoutMasterId handoutMasterIdLst hf hsl htmlPubPr "
        "inkTgt intVal italic iterate kinsoku kiosk link modifyVerifier newsflash nextCondLst normalViewPr "
        "notes notesMaster notesMasterId notesMasterIdLst notesStyle notesSz notesTextViewPr notesViewPr "
        "nvCxnSpPr nvGraphicFramePr nvGrpSpPr nvPicPr nvPr nvSpPr oleChartEl oleObj origin otherStyle "
        "outlineViewPr pRg par penClr ph photoAlbum pic plus pos present presentation presentationPr "
        "prevCondLst prnPr progress pull push rCtr random randomBar regular restoredLeft restoredTop rgb rtn "
        "scale seq set showPr sld sldAll sldId sldIdLst sldLayout sldLayoutId sldLayoutIdLst sldLst sldMaster "
        "sldMasterId sldMasterIdLst sldRg sldSyncPr sldSz sldTgt slideViewPr snd sndAc sndTgt sorterViewPr sp "
        "spPr spTgt spTree split stCondLst stSnd strVal strips style subSp subTnLst tag tagLst tags tav "
        "tavLst text tgtEl timing titleStyle tmAbs tmPct tmpl tmplLst tn tnLst to transition txBody txEl "
        "txStyles val video viewPr webPr wedge wheel wipe xfrm zoom "
    ),
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main": (
        "DataBinding Map MapInfo Schema alignment anchor author authors autoFilter autoSortScope b bgColor bk "
        "bookViews border borders bottom brk c cacheField cacheFields cacheHierarchies cacheHierarchy "
        "cacheSource calcChain calcPr calculatedColumnFormula calculatedItem calculatedItems calculatedMember "
        "calculatedMembers cell cellMetadata cellStyle cellStyleXfs cellStyles cellWatch cellWatches cellXfs "
        "cfRule cfvo charset chartFormat chartFormats chartsheet col colBreaks colFields colHierarchiesUsage "
        "colHierarchyUsage colItems color colorFilter colorScale colors cols comment commentList commentPr "
        "comments condense conditionalFormat conditionalFormats conditionalFormatting connection connections "
        "consolidation control controlPr controls customFilter customFilters customPr customProperties "
        "customSheetView customSheetViews customWorkbookView customWorkbookViews d dataBar dataConsolidate "
        "dataField dataFields dataRef dataRefs dataValidation dataValidations dateGroupItem dbPr ddeItem "
        "ddeItems ddeLink definedName definedNames deletedField diagonal dialogsheet dimension dimensions "
        "discretePr drawing drawingHF dxf dxfs dynamicFilter e end entries evenFooter evenHeader ext extLst "
        "extend externalBook externalLink externalReference externalReferences f family fgColor field "
        "fieldGroup fieldUsage fieldsUsage fileRecoveryPr fileSharing fileVersion fill fills filter "
        "filterColumn filters firstFooter firstHeader font fonts format formats formula formula1 formula2 "
        "from functionGroup functionGroups futureMetadata gradientFill group groupItems groupLevel "
        "groupLevels groupMember groupMembers groups header headerFooter headers horizontal hyperlink "
        "hyperlinks i iconFilter iconSet ignoredError ignoredErrors indexedColors inputCells is item items k "
        "kpi kpis left legacyDrawing legacyDrawingHF location m main map maps mdx mdxMetadata measureGroup "
        "measureGroups member members mergeCell mergeCells metadata metadataStrings metadataType "
        "metadataTypes mp mpMap mps mruColors ms n name nc ndxf numFmt numFmts objectPr oc oddFooter "
        "oddHeader odxf olapPr oldFormula oleItem oleItems oleLink oleObject oleObjects oleSize outline "
        "outlinePr p page pageField pageFields pageItem pageMargins pageSetUpPr pageSetup pages pane "
        "parameter parameters patternFill phoneticPr picture pivotArea pivotAreas pivotCache "
        "pivotCacheDefinition pivotCacheRecords pivotCaches pivotField pivotFields pivotHierarchies "
        "pivotHierarchy pivotSelection pivotTableDefinition pivotTableStyleInfo printOptions protectedRange "
        "protectedRanges protection query queryCache queryTable queryTableDeletedFields queryTableField "
        "queryTableFields queryTableRefresh r rFont rPh rPr raf rangePr rangeSet rangeSets rc rcc rcft rcmt "
        "rcv rdn reference references reviewed reviewedList revisions rfmt rgbColor right ris rm row "
        "rowBreaks rowFields rowHierarchiesUsage rowHierarchyUsage rowItems rqt rrc rsnm s scenario scenarios "
        "scheme selection serverFormat serverFormats set sets shadow sharedItems sheet sheetCalcPr sheetData "
        "sheetDataSet sheetFormatPr sheetId sheetIdMap sheetName sheetNames sheetPr sheetProtection sheetView "
        "sheetViews sheets si singleXmlCell singleXmlCells sortByTuple sortCondition sortState sst start stop "
        "stp strike styleSheet sz t tabColor table tableColumn tableColumns tablePart tableParts tableStyle "
        "tableStyleElement tableStyleInfo tableStyles tables text textField textFields textPr to top top10 "
        "totalsRowFormula tp tpl tpls tr tupleCache u undo userInfo users v val value valueMetadata values "
        "vertAlign vertical volType volTypes webPr webPublishItem webPublishItems webPublishObject "
        "webPublishObjects webPublishing workbook workbookPr workbookProtection workbookView worksheet "
        "worksheetSource x xf xmlCellPr xmlColumnPr xmlPr "
    ),
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main": (
        "abstractNum abstractNumId active activeRecord activeWritingStyle addressFieldName "
        "adjustLineHeightInTable adjustRightInd alias aliases alignBordersAndEdges alignTablesRowByRow "
        "allowPNG allowSpaceOfSameStyleInTable altChunk altChunkPr altName alwaysMergeEmptyNamespace "
        "alwaysShowPlaceholderText annotationRef applyBreakingRules attachedSchema attachedTemplate attr "
        "autoCaption autoCaptions autoFormatOverride autoHyphenation autoRedefine autoSpaceDE autoSpaceDN "
        "autoSpaceLikeWord95 autofitToFirstFixedWidthCell b bCs background balanceSingleByteDoubleByteWidth "
        "bar basedOn bdo bdr behavior behaviors between bibliography bidi bidiVisual blockQuote body bodyDiv "
        "bookFoldPrinting bookFoldPrintingSheets bookFoldRevPrinting bookmarkEnd bookmarkStart "
        "bordersDoNotSurroundFooter bordersDoNotSurroundHeader bottom br cachedColBalance calcOnExit calendar "
        "cantSplit caps caption captions category cellDel cellIns cellMerge characterSpacingControl charset "
        "checkBox checkErrors checked citation clickAndTypeStyle clrSchemeMapping cnfStyle col colDelim color "
        "cols column comboBox comment commentRangeEnd commentRangeStart commentReference comments compat "
        "compatSetting connectString consecutiveHyphenLimit contentPart contextualSpacing "
        "continuationSeparator control convMailMergeEsc cr cs customXml customXmlDelRangeEnd "
        "customXmlDelRangeStart customXmlInsRangeEnd customXmlInsRangeStart customXmlMoveFromRangeEnd "
        "customXmlMoveFromRangeStart customXmlMoveToRangeEnd customXmlMoveToRangeStart customXmlPr "
        "dataBinding dataSource dataType date dateFormat dayLong dayShort ddList decimalSymbol default "
        "defaultTabStop defaultTableStyle del delInstrText delText description destination dir dirty "
        "displayBackgroundShape displayHangulFixedWidth displayHorizontalDrawingGridEvery "
        "displayVerticalDrawingGridEvery div divBdr divId divs divsChild doNotAutoCompressPictures "
        "doNotAutofitConstrainedTables doNotBreakConstrainedForcedTable doNotBreakWrappedTables "
        "doNotDemarcateInvalidXml doNotDisplayPageBoundaries doNotExpandShiftReturn doNotHyphenateCaps "
        "doNotIncludeSubdocsInStats doNotLeaveBackslashAlone doNotOrganizeInFolder doNotRelyOnCSS "
        "doNotSaveAsSingleFile doNotShadeFormData doNotSnapToGridInCell doNotSuppressBlankLines "
        "doNotSuppressIndentation doNotSuppressParagraphBorders doNotTrackFormatting doNotTrackMoves "
        "doNotUseEastAsianBreakRules doNotUseHTMLParagraphAutoSpacing doNotUseIndentAsNumberingTabStop "
        "doNotUseLongFileNames doNotUseMarginsForDrawingGridOrigin doNotValidateAgainstSchema "
        "doNotVertAlignCellWithSp doNotVertAlignInTxbx doNotWrapTextWithPunct docDefaults docGrid docPart "
        "docPartBody docPartCategory docPartGallery docPartList docPartObj docPartPr docPartUnique docParts "
        "docVar docVars document documentProtection documentType drawing drawingGridHorizontalOrigin "
        "drawingGridHorizontalSpacing drawingGridVerticalOrigin drawingGridVerticalSpacing dropDownList "
        "dstrike dynamicAddress eastAsianLayout effect em embedBold embedBoldItalic embedItalic embedRegular "
        "embedSystemFonts embedTrueTypeFonts emboss enabled encoding end endnote endnotePr endnoteRef "
        "endnoteReference endnotes entryMacro equation evenAndOddHeaders exitMacro fHdr family ffData "
        "fieldMapData fitText flatBorders fldChar fldData fldSimple font fonts footerReference footnote "
        "footnoteLayoutLikeWW8 footnotePr footnoteRef footnoteReference footnotes forceUpgrade "
        "forgetLastTabAlignment formProt format formsDesign frame frameLayout framePr frameset "
        "framesetSplitbar ftr gallery glossaryDocument gridAfter gridBefore gridCol gridSpan group "
        "growAutofit guid gutterAtTop hMerge hdr hdrShapeDefaults headerReference headerSource helpText "
        "hidden hideGrammaticalErrors hideMark hideSpellingErrors highlight hps hpsBaseText hpsRaise "
        "hyperlink hyphenationZone i iCs id ignoreMixedContent ilvl imprint ind ins insideH insideV instrText "
        "isLgl jc keepLines keepNext kern kinsoku lang lastRenderedPageBreak latentStyles layoutRawTableWidth "
        "layoutTableRowsApart left legacy lid lineWrapLikeWord6 link linkStyles linkToQuery linkedToFile "
        "listEntry listItem listSeparator lnNumType lock locked lsdException lvl lvlJc lvlOverride "
        "lvlPicBulletId lvlRestart lvlText mailAsAttachment mailMerge mailSubject mainDocumentType mappedName "
        "marBottom marH marLeft marRight marTop marW matchSrc maxLength mirrorIndents mirrorMargins monthLong "
        "monthShort moveFrom moveFromRangeEnd moveFromRangeStart moveTo moveToRangeEnd moveToRangeStart movie "
        "multiLevelType mwSmallCaps name next noBorder noBreakHyphen noColumnBalance noEndnote "
        "noExtraLineSpacing noLeading noLineBreaksAfter noLineBreaksBefore noProof noPunctuationKerning "
        "noResizeAllowed noSpaceRaiseLower noTabHangInd noWrap notTrueType nsid num numFmt numId "
        "numIdMacAtCleanup numPicBullet numPr numRestart numStart numStyleLink numbering numberingChange "
        "oMath object objectEmbed objectLink odso optimizeForBrowser outline outlineLvl overflowPunct p pBdr "
        "pPr pPrChange pPrDefault pStyle pageBreakBefore panose1 paperSrc permEnd permStart personal "
        "personalCompose personalReply pgBorders pgMar pgNum pgNumType pgSz pict picture pitch pixelsPerInch "
        "placeholder pos position printBodyTextBeforeHeader printColBlack printFormsData "
        "printFractionalCharacterWidth printPostScriptOverText printTwoOnOne printerSettings proofErr "
        "proofState ptab qFormat query r rFonts rPr rPrChange rPrDefault rStyle readModeInkLockDown "
        "recipientData recipients relyOnVML removeDateAndTime removePersonalInformation result revisionView "
        "richText right rsid rsidRoot rsids rt rtl rtlGutter ruby rubyAlign rubyBase rubyPr saveFormsData "
        "saveInvalidXml savePreviewPicture saveSubsetFonts saveThroughXslt saveXmlDataOnly scrollbar sdt "
        "sdtContent sdtEndPr sdtPr sectPr sectPrChange selectFldWithFirstOrLastChar semiHidden separator "
        "settings shadow shapeDefaults shapeLayoutLikeWW8 shd showBreaksInFrames showEnvelope showXMLTags "
        "showingPlcHdr sig size sizeAuto smallCaps snapToGrid softHyphen sourceFileName spaceForUL spacing "
        "spacingInWholePoints specVanish splitPgBreakAndParaMark src start startOverride statusText "
        "storeMappedDataAs strictFirstAndLastChars strike style styleLink styleLockQFSet styleLockTheme "
        "stylePaneFormatFilter stylePaneSortMethod styles subDoc subFontBySize suff summaryLength "
        "suppressAutoHyphens suppressBottomSpacing suppressLineNumbers suppressOverlap suppressSpBfAfterPgBrk "
        "suppressSpacingAtTopOfPage suppressTopSpacing suppressTopSpacingWP swapBordersFacingPages sym sz "
        "szCs t tab table tabs tag targetScreenSz tbl tblBorders tblCaption tblCellMar tblCellSpacing "
        "tblDescription tblGrid tblGridChange tblHeader tblInd tblLayout tblLook tblOverlap tblPr tblPrChange "
        "tblPrEx tblPrExChange tblStyle tblStyleColBandSize tblStylePr tblStyleRowBandSize tblW tblpPr tc "
        "tcBorders tcFitText tcMar tcPr tcPrChange tcW temporary text textAlignment textDirection textInput "
        "textboxTightWrap themeFontLang titlePg tl2br tmpl top topLinePunct tr tr2bl trHeight trPr trPrChange "
        "trackRevisions truncateFontHeightsLikeWP6 txbxContent type types u udl uiCompat97To2003 uiPriority "
        "ulTrailSpace underlineTabInNumList unhideWhenUsed uniqueTag updateFields useAltKinsokuLineBreakRules "
        "useAnsiKerningPairs useFELayout useNormalStyleForList usePrinterMetrics "
        "useSingleBorderforContiguousCells useWord2002TableStyleRules useWord97LineBreakRules "
        "useXSLTWhenSaving vAlign vMerge vanish vertAlign view viewMergedData w wAfter wBefore webHidden "
        "webSettings widowControl wordWrap wpJustification wpSpaceWidth wrapTrailSpaces writeProtection "
        "yearLong yearShort zoom "
    ),
    "urn:schemas-microsoft-com:office:excel": (
        "Accel Accel2 Anchor AutoFill AutoLine AutoPict AutoScale CF Camera Cancel Checked ClientData "
        "ColHidden Colored Column DDE Default DefaultSize Disabled Dismiss DropLines DropStyle Dx FirstButton "
        "FmlaGroup FmlaLink FmlaMacro FmlaPict FmlaRange FmlaTxbx Help Horiz Inc JustLastX LCT ListItem "
        "LockText Locked MapOCX Max Min MoveWithCells MultiLine MultiSel NoThreeD NoThreeD2 Page PrintObject "
        "RecalcAlways Row RowHidden ScriptExtended ScriptLanguage ScriptLocation ScriptText SecretEdit Sel "
        "SelType SizeWithCells TextHAlign TextVAlign UIObj VScroll VTEdit Val ValidIds Visible WidthMin "
    ),
    "urn:schemas-microsoft-com:office:office": (
        "FieldCodes LinkType LockedField OLEObject bottom callout clippath colormenu colormru column complex "
        "diagram entry extrusion fill idmap ink left lock proxy r regrouptable rel relationtable right rules "
        "shapedefaults shapelayout signatureline skew top "
    ),
    "urn:schemas-microsoft-com:office:powerpoint": (
        "iscomment textdata "
    ),
    "urn:schemas-microsoft-com:office:word": (
        "anchorlock borderbottom borderleft borderright bordertop wrap "
    ),
    "urn:schemas-microsoft-com:vml": (
        "arc background curve f fill formulas group h handles image imagedata line oval path polyline rect "
        "roundrect shadow shape shapetype stroke textbox textpath "
    ),
}
# Smart tags (ECMA-376 transitional 17.5.1.9, deprecated, still written by Word 2007) are not in that data.
_NAMES["http://schemas.openxmlformats.org/wordprocessingml/2006/main"] += "smartTag smartTagPr smartTagType doNotEmbedSmartTags "
# XML Schema 1.0 (W3C): an XML map's embedded schema, allowed in xl/xmlMaps.xml only (vocab.XML_MAPS).
_NAMES["http://www.w3.org/2001/XMLSchema"] = (
    "all annotation any anyAttribute appinfo attribute attributeGroup choice complexContent complexType "
    "documentation element enumeration extension field fractionDigits group import include key keyref length "
    "list maxExclusive maxInclusive maxLength minExclusive minInclusive minLength notation pattern redefine "
    "restriction schema selector sequence simpleContent simpleType totalDigits union unique whiteSpace "
)
# Namespaces of attributes only: any element in them is unknown.
_NAMES.update({u: "" for u in (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac")})
_TABLE: dict[str, frozenset[str]] = {u: frozenset(v.split()) for u, v in _NAMES.items()}


# Legacy VML (urn:schemas-microsoft-com:...) has elements the data leaves out (pvml:recolorinfo in
# PowerPoint 2007 templates): its namespaces are judged as wholes.
for _u in [u for u in _TABLE if u.startswith("urn:schemas-microsoft-com:")]:
    del _TABLE[_u]
# Word saving as Strict writes the shapes, groups and canvases of Office 2010 (wps, wpg, wpc) in the
# strict wordprocessingDrawing namespace.
_W10 = "http://schemas.microsoft.com/office/word/2010/"
_TABLE["http://purl.oclc.org/ooxml/drawingml/wordprocessingDrawing"] = frozenset().union(*(
    _TABLE[u] for u in ("http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
                        _W10 + "wordprocessingShape", _W10 + "wordprocessingGroup", _W10 + "wordprocessingCanvas")))


@functools.cache  # called for every distinct tag of every part, twice per file: no import per call
def element_names(uri: str) -> frozenset[str] | None:
    """The element names `uri` defines, or None when no list is known (then the namespace alone decides)."""
    from .vocab import STRICT

    return _TABLE.get(uri) or _TABLE.get(STRICT.get(uri, uri))
