/** The parameters of UsrBackgroundActivityCreator (the platform sample's ActivityData class). */
export interface UsrActivityData {
  title: string;
  typeId: string;
}
