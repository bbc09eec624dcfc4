// The DRIVE task's training data for `prune` and `bench train`: the paper's preprocessing,
// random patches centred in the field of view and the held-out validation patches, as
// per-pixel training splits.
import DataIO
import Segmentation
import Training

enum DriveData {
    /// The DRIVE folder: `--data DIR`, else `shared/data/drive` next to the package.
    static func dir(_ option: String?, command: String) throws -> String {
        if let option { return option }
        guard let d = DriveSet.defaultDir else {
            throw CLIError("\(command): DRIVE not found: there is no shared/data folder (holding README.md) next to the package or above the current directory, and RRAM_EDGE_DATA is not set; pass --data DIR (a folder with {train,test}-{images-idx4,vessels-idx3,fov-idx3}-ubyte.gz)")
        }
        return d
    }

    /// (training patches [1, 64, 64], validation patches [1, crop, crop]) with per-pixel labels,
    /// from the training images, as `config` (its seed, patches and crop) draws them.
    static func splits(dir: String, config: TrainConfig) throws -> (train: DataSplit, validation: DataSplit) {
        let set = try DriveSet.load(dir: dir, split: .train)
        let total = config.patches ?? 5000
        let crop = config.crop ?? 48
        let (tr, va) = try Patches.drive(set, total: total, validation: total / 10, validationCrop: crop, seed: config.seed)
        var train = try DataSplit(count: tr.count, sampleShape: [1, tr.size, tr.size], samples: tr.values, labels: tr.labels, labelsPerSample: tr.size * tr.size)
        let validation = try DataSplit(count: va.count, sampleShape: [1, va.size, va.size], samples: va.values, labels: va.labels, labelsPerSample: va.size * va.size)
        if let n = config.limitTrain { train = train.prefix(n) }
        return (train, validation)
    }
}
