package luks

// AFMerge is afMerge, for the fuzz test.
var AFMerge = afMerge
